"""Train a method: ``python train.py experiment=ram_coco`` (``--help`` lists the experiments)."""

import hydra
from omegaconf import DictConfig

from ramlico.cli import train


@hydra.main(version_base="1.3", config_path="ramlico/configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    # the best validation value: what a Hydra sweeper (python train.py -m ...) optimises
    return metrics.get(cfg.get("optimized_metric") or "")


if __name__ == "__main__":
    main()
