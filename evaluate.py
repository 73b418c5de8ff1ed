"""Evaluate on ZSL/GZSL splits: ``python evaluate.py experiment=clip_zeroshot_demo``
or ``python evaluate.py experiment=<name> ckpt_path=logs/train/runs/<date>/checkpoints/last.ckpt``
"""

import hydra
from omegaconf import DictConfig

from ramlico.cli import evaluate


@hydra.main(version_base="1.3", config_path="ramlico/configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
