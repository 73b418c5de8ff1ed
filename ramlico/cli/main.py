"""Console scripts ``ramlico-train``, ``ramlico-evaluate``, ``ramlico-predict``.

They read the configs shipped inside the package (``pkg://ramlico.configs``), so they work from
any directory; runs write to ``./logs`` (``paths.root_dir``) and data to ``./data``. Hydra's
command line is unchanged: ``ramlico-train experiment=ram_demo trainer.max_epochs=2``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ramlico.cli.checkpoint import with_checkpoint_choices
from ramlico.cli.configs import CONFIG_MODULE

__all__ = ["evaluate_main", "predict_main", "train_main"]


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="train")
def train_main(cfg: DictConfig) -> None:
    """``ramlico-train``: ``train.py`` without a checkout."""
    from ramlico.cli import train

    train(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="eval")
def _evaluate_app(cfg: DictConfig) -> None:
    from ramlico.cli import evaluate

    evaluate(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="predict")
def _predict_app(cfg: DictConfig) -> None:
    from ramlico.cli import predict

    predict(cfg)


def evaluate_main() -> None:
    """``ramlico-evaluate``: ``evaluate.py`` without a checkout (composed with the config groups
    of the run that wrote ``ckpt_path``, as ``evaluate.py``)."""
    sys.argv[1:] = with_checkpoint_choices(sys.argv[1:])
    _evaluate_app()


def predict_main() -> None:
    """``ramlico-predict``: ``predict.py`` without a checkout (same checkpoint restoring)."""
    sys.argv[1:] = with_checkpoint_choices(sys.argv[1:])
    _predict_app()
