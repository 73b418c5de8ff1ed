"""Train a method: ``python train.py experiment=ram_coco`` (``--help`` lists the experiments)."""

import hydra
from omegaconf import DictConfig

from ramlico.cli import train


@hydra.main(version_base="1.3", config_path="ramlico/configs", config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
