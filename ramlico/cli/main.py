"""Console scripts ``ramlico-train``, ``ramlico-evaluate``, ``ramlico-predict``.

They read the configs shipped inside the package (``pkg://ramlico.configs``), so they work from
any directory; runs write to ``./logs`` (``paths.root_dir``) and data to ``./data``. Hydra's
command line is unchanged: ``ramlico-train experiment=ram_demo trainer.max_epochs=2``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ramlico.cli.configs import CONFIG_MODULE

__all__ = ["evaluate_main", "predict_main", "train_main"]


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="train")
def train_main(cfg: DictConfig) -> None:
    """``ramlico-train``: ``train.py`` without a checkout."""
    from ramlico.cli import train

    train(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="eval")
def evaluate_main(cfg: DictConfig) -> None:
    """``ramlico-evaluate``: ``evaluate.py`` without a checkout."""
    from ramlico.cli import evaluate

    evaluate(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name="predict")
def predict_main(cfg: DictConfig) -> None:
    """``ramlico-predict``: ``predict.py`` without a checkout."""
    from ramlico.cli import predict

    predict(cfg)
