"""Tag your own images: ``python predict.py ckpt_path=RUN/last.ckpt inputs=imgs/ 'labels=[a,b]'``
or checkpoint-free ``python predict.py experiment=clip_zeroshot_demo inputs=imgs/ labels=...``.
"""

import sys

import hydra
from omegaconf import DictConfig

from ramlico.cli import predict
from ramlico.cli.checkpoint import with_checkpoint_choices


@hydra.main(version_base="1.3", config_path="ramlico/configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    # compose with the config groups of the checkpoint's run (experiment, data, model)
    sys.argv[1:] = with_checkpoint_choices(sys.argv[1:])
    main()
