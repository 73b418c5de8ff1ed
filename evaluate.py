"""Evaluate on the test splits: ``python evaluate.py experiment=clip_zeroshot_demo``
or ``python evaluate.py ckpt_path=logs/train/runs/<date>/checkpoints/last.ckpt`` (the checkpoint
brings its experiment, data and preprocessing; see ramlico.cli.checkpoint).
"""

import sys

import hydra
from omegaconf import DictConfig

from ramlico.cli import evaluate
from ramlico.cli.checkpoint import with_checkpoint_choices


@hydra.main(version_base="1.3", config_path="ramlico/configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    # compose with the config groups of the checkpoint's run (experiment, data, model)
    sys.argv[1:] = with_checkpoint_choices(sys.argv[1:])
    main()
