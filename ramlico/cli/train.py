"""``train(cfg)``: fit a method from a composed config, then test its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig
from rich.console import Console

from ramlico.cli.checkpoint import load_trainable_weights
from ramlico.cli.hparams import hyperparameters, log_hparams_metrics, log_hyperparameters
from ramlico.cli.instantiate import instantiate_callbacks, instantiate_loggers, resolved_config
from ramlico.cli.report import results_table
from ramlico.cli.wrapper import task_wrapper
from ramlico.utils import get_logger

__all__ = ["train"]

log = get_logger(__name__)


def _refuse_eval_only(cfg: DictConfig) -> None:
    target = cfg.model.get("_target_")
    cls = hydra.utils.get_class(target)
    if getattr(cls, "eval_only", False):
        raise ValueError(
            f"{target} is training-free (evaluation only); run "
            "`python evaluate.py experiment=<name>` instead of train.py"
        )


@task_wrapper
def train(cfg: DictConfig, objects: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Instantiate data, model, callbacks, loggers and Trainer; fit; test the best checkpoint.

    Called as ``train(cfg)`` (:func:`ramlico.cli.wrapper.task_wrapper` supplies ``objects`` and
    closes the loggers if anything fails). Every logger receives the resolved config as its
    hyper-parameters.

    Returns:
        ``(metrics, objects)``: the Trainer's callback metrics (train and test) and the objects
        built (``cfg``, ``datamodule``, ``model``, ``callbacks``, ``loggers``, ``trainer``).
    """
    objects["cfg"] = cfg
    _refuse_eval_only(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    log.info("building datamodule <%s>", cfg.data._target_)
    datamodule = objects["datamodule"] = hydra.utils.instantiate(cfg.data, _convert_="all")
    log.info("building model <%s>", cfg.model._target_)
    model = objects["model"] = hydra.utils.instantiate(cfg.model, _convert_="all")
    model.run_config = resolved_config(cfg)
    if cfg.get("init_ckpt"):
        missing = load_trainable_weights(model, cfg.init_ckpt)
        log.info("initialised from %s (kept fresh: %s)", cfg.init_ckpt, missing or "none")
    callbacks = objects["callbacks"] = instantiate_callbacks(cfg.get("callbacks"))
    loggers = objects["loggers"] = instantiate_loggers(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    objects["trainer"] = trainer
    params = hyperparameters(model.run_config, model)
    log_hyperparameters(trainer.loggers, params)
    metrics: dict[str, Any] = {}
    if cfg.get("train", True):
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(trainer.callback_metrics)
    if cfg.get("test", True):
        ckpt = next(
            (c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None
        )
        best = (ckpt.best_model_path or ckpt.last_model_path) if ckpt is not None else ""
        if cfg.get("train", True) and not best:
            log.warning("no checkpoint was saved; testing the current weights")
        trainer.test(
            model=model, datamodule=datamodule, ckpt_path=best or None, weights_only=True,
            verbose=False,
        )  # fmt: skip
        metrics.update(trainer.callback_metrics)
        if trainer.is_global_zero:
            title = f"{type(model).__name__} ({Path(best).name if best else 'final weights'})"
            Console().print(results_table({k: float(v) for k, v in metrics.items()}, title))
    metrics = {k: float(v) for k, v in metrics.items()}
    log_hparams_metrics(trainer.loggers, params, metrics)
    return metrics, objects
