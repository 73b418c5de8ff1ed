"""``train(cfg)``: fit a method from a composed config, then test its best checkpoint."""

from __future__ import annotations

import logging
import warnings
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, open_dict

from ramlico.cli.checkpoint import launch_info, load_trainable_weights
from ramlico.cli.hparams import hyperparameters, log_hparams_metrics, log_hyperparameters
from ramlico.cli.instantiate import instantiate_callbacks, instantiate_loggers, resolved_config
from ramlico.cli.report import print_results
from ramlico.cli.runlog import quiet_third_party, write_metrics
from ramlico.cli.wrapper import task_wrapper
from ramlico.data.base import RamlicoDataModule
from ramlico.utils import get_logger
from ramlico.utils.logging import stdlib_logger

__all__ = ["select_metric", "train"]

log = get_logger(__name__)


def _refuse_eval_only(cfg: DictConfig) -> None:
    target = cfg.model.get("_target_")
    cls = hydra.utils.get_class(target)
    if getattr(cls, "eval_only", False):
        raise ValueError(
            f"{target} is training-free (evaluation only); run "
            "`python evaluate.py experiment=<name>` instead of train.py"
        )


def select_metric(requested: str | None, datamodule: RamlicoDataModule) -> str | None:
    """The validation metric that picks the best checkpoint (``optimized_metric``).

    ``None`` (the default) means ``val/<first validation split>/mAP`` for multi-label data and
    ``val/<split>/top1`` for single-label data. Returns ``None`` when the datamodule has no
    validation data.

    Raises:
        ValueError: ``requested`` names a split the datamodule does not validate on.
    """
    splits = list(datamodule.val_splits)
    if not splits:
        if requested:
            log.warning(
                "optimized_metric=%s, but the data has no validation split (data.val_fraction=0 "
                "and no data.val_file): the last checkpoint is tested", requested,
            )  # fmt: skip
        return None
    if requested is None:
        task = datamodule.task
        return f"val/{splits[0]}/{'mAP' if task == 'multilabel' else 'top1'}"
    parts = requested.split("/")
    if len(parts) != 3 or parts[0] != "val" or parts[1] not in splits:
        raise ValueError(
            f"optimized_metric={requested!r} is not a validation metric of this data; use "
            f"val/<split>/<metric> with split in {splits} (e.g. val/{splits[0]}/mAP)"
        )
    return requested


def _resume_in_original_folder(cfg: DictConfig, stack: ExitStack) -> Path | None:
    """A resumed run writes to the folder of the run it resumes (``<run>/checkpoints/x.ckpt``).

    This session's own folder (Hydra's, with its config and log) gets a ``resumed_run`` link to
    it; the original folder's ``resumes.log`` gets a line and its ``train.log`` this session's
    log lines. Returns the original folder (``None``: not resuming, or the checkpoint is not in
    a run's ``checkpoints/`` folder).
    """
    if not cfg.get("ckpt_path"):
        return None
    ckpt = Path(cfg.ckpt_path)
    if ckpt.parent.name != "checkpoints":
        log.info("resuming from %s (not in a run's checkpoints/ folder): new run folder", ckpt)
        return None
    original, session = ckpt.parent.parent, Path(cfg.paths.output_dir)
    if original.resolve() == session.resolve():
        return original
    with open_dict(cfg):
        cfg.paths.output_dir = str(original)
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    session.mkdir(parents=True, exist_ok=True)
    link = session / "resumed_run"
    if not link.exists():
        try:
            link.symlink_to(original.resolve(), target_is_directory=True)
        except OSError:
            link.with_suffix(".txt").write_text(f"{original.resolve()}\n")
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with (original / "resumes.log").open("a") as f:
        f.write(f"{stamp} resumed from {ckpt.name}; session folder {session.resolve()}\n")
    handler = logging.FileHandler(original / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    stdlib_logger().addHandler(handler)
    stack.callback(stdlib_logger().removeHandler, handler)
    stack.callback(handler.close)
    log.info("resuming %s in its own folder %s (this session: %s)", ckpt.name, original, session)
    return original


def _model_selection(cfg: DictConfig, datamodule: Any) -> str | None:
    """Resolve ``optimized_metric`` into the config (checkpoint, early stopping, summary)."""
    metric = select_metric(cfg.get("optimized_metric"), datamodule)
    with open_dict(cfg):
        cfg.optimized_metric = metric
        if metric is None:
            cfg.trainer.limit_val_batches = 0  # no validation data: never run a validation loop
    callbacks = cfg.get("callbacks") or {}
    if metric is None and "early_stopping" in callbacks:
        raise ValueError(
            "callbacks=early_stopping needs validation data: set data.val_fraction=0.1 (a seeded "
            "part of the training images) or data.val_file=<label file>"
        )
    return metric


def _checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    return next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)


def _report_checkpoints(trainer: L.Trainer, metric: str | None) -> str:
    """Log the best and last checkpoint paths; return the one to test ("" if none)."""
    ckpt = _checkpoint_callback(trainer)
    if ckpt is None:
        log.warning("no checkpoint callback: testing the current weights")
        return ""
    best, last = ckpt.best_model_path, ckpt.last_model_path
    if metric is not None and best and ckpt.best_model_score is not None:
        log.info("best checkpoint: %s (%s = %.4g)", best, metric, float(ckpt.best_model_score))
    elif best:
        log.info("checkpoint: %s (no validation: the last epoch)", best)
    if last:
        log.info("last checkpoint: %s", last)
    callbacks = trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning, undeclared
    stopper = next((c for c in callbacks if isinstance(c, EarlyStopping)), None)
    if stopper is not None and stopper.stopped_epoch:
        log.info("early stopping after epoch %d (%s)", stopper.stopped_epoch + 1, metric)
    return best or last


@task_wrapper
def train(cfg: DictConfig, objects: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Instantiate data, model, callbacks, loggers and Trainer; fit; test the best checkpoint.

    Called as ``train(cfg)`` (:func:`ramlico.cli.wrapper.task_wrapper` supplies ``objects`` and
    closes the loggers if anything fails). Every logger receives the resolved config as its
    hyper-parameters. The best checkpoint is chosen on ``optimized_metric`` (a validation metric;
    default ``val/<split>/mAP`` or ``top1``) when the data has a validation split, else it is the
    last. The run folder, the checkpoint paths and ``<run folder>/metrics.json`` are logged.

    Returns:
        ``(metrics, objects)``: the Trainer's callback metrics (train, val and test; the value of
        ``optimized_metric`` is the best checkpoint's) and the objects built (``cfg``,
        ``datamodule``, ``model``, ``callbacks``, ``loggers``, ``trainer``).
    """
    objects["cfg"] = cfg
    _refuse_eval_only(cfg)
    with ExitStack() as stack:
        stack.enter_context(quiet_third_party())
        return _train(cfg, objects, stack)


def _train(
    cfg: DictConfig, objects: dict[str, Any], stack: ExitStack
) -> tuple[dict[str, Any], dict[str, Any]]:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    _resume_in_original_folder(cfg, stack)
    log.info("run folder: %s", Path(cfg.paths.output_dir).resolve())
    log.info("building datamodule <%s>", cfg.data._target_)
    datamodule = objects["datamodule"] = hydra.utils.instantiate(cfg.data, _convert_="all")
    metric = _model_selection(cfg, datamodule)
    log.info("building model <%s>", cfg.model._target_)
    model = objects["model"] = hydra.utils.instantiate(cfg.model, _convert_="all")
    model.run_config = resolved_config(cfg)
    model.launch = launch_info(cfg)
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
    best = ""
    if cfg.get("train", True):
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(trainer.callback_metrics)
        best = _report_checkpoints(trainer, metric)
        ckpt = _checkpoint_callback(trainer)
        if metric is not None and ckpt is not None and ckpt.best_model_score is not None:
            metrics[metric] = ckpt.best_model_score
    if cfg.get("test", True):
        trainer.test(
            model=model, datamodule=datamodule, ckpt_path=best or None, weights_only=True,
            verbose=False,
        )  # fmt: skip
        metrics.update({k: v for k, v in trainer.callback_metrics.items()
                        if k.startswith(("test/", "regions/"))})  # fmt: skip
        if trainer.is_global_zero:
            title = f"{type(model).__name__} ({Path(best).name if best else 'final weights'})"
            print_results({k: float(v) for k, v in metrics.items()}, title)
    values = {k: float(v) for k, v in metrics.items()}
    log_hparams_metrics(trainer.loggers, params, values)
    if trainer.is_global_zero:
        path = write_metrics(
            Path(cfg.paths.output_dir) / "metrics.json", values, checkpoint=best or None,
            optimized_metric=metric,
        )  # fmt: skip
        log.info("metrics: %s", path)
    return values, objects
