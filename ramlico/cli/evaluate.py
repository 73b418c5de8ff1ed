"""``evaluate(cfg)``: test a trained checkpoint or a training-free method on the eval splits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from ramlico.callbacks import load_ema_average
from ramlico.cli.checkpoint import check_label_space, load_checkpoint, restore_run
from ramlico.cli.hparams import hyperparameters, log_hparams_metrics, log_hyperparameters
from ramlico.cli.instantiate import instantiate_callbacks, instantiate_loggers, resolved_config
from ramlico.cli.report import print_results
from ramlico.cli.runlog import quiet_third_party, write_metrics
from ramlico.cli.wrapper import task_wrapper
from ramlico.utils import get_logger

__all__ = ["evaluate"]

log = get_logger(__name__)


def _saliency(cfg: DictConfig, model: Any, datamodule: Any) -> dict[str, float]:
    """``eval.saliency=true``: Insertion/Deletion of post-hoc CAMs on the test split."""
    from ramlico.explain import evaluate_saliency

    if not hasattr(model, "export"):
        raise ValueError(
            f"eval.saliency=true needs a model with export() -> classifier with a feature_tap "
            f"(e.g. LICO); {type(model).__name__} has none. Run with eval.saliency=false."
        )
    ev = cfg.eval
    datamodule.setup("test")
    dataset = datamodule.test_dataloader().dataset  # (image, label, dataset index) items
    return evaluate_saliency(
        model.export(), dataset, methods=list(ev.methods), num_images=ev.num_images,
        seed=ev.seed, step=ev.step, substrate=ev.deletion_substrate,
        insertion_start=ev.insertion_start, png_dir=Path(cfg.paths.output_dir) / "saliency",
        num_png=ev.num_png, batch_size=ev.batch_size,
    )  # fmt: skip


@task_wrapper
def evaluate(
    cfg: DictConfig, objects: dict[str, Any], overrides: Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """Evaluate on every test split of the datamodule (ZSL and GZSL, or closed-set); print and log
    the metrics and write ``<run folder>/metrics.json``.

    Called as ``evaluate(cfg)`` or ``evaluate(cfg, overrides=[...])`` (see
    :func:`ramlico.cli.wrapper.task_wrapper`). With ``ckpt_path`` the run is restored from the
    checkpoint (:func:`ramlico.cli.checkpoint.restore_run`): the model, the data (label space,
    files, image size, mean/std) and the trainable weights; ``overrides`` (default: the command
    line) name what is taken from ``cfg`` instead, and a requested experiment, method, label split
    or preprocessing that contradicts the checkpoint is an error. ``use_checkpoint_config=false``
    evaluates ``cfg`` as composed (weights from the checkpoint). Training-free methods need no
    checkpoint. Every logger receives the resolved config as its hyper-parameters.
    """
    objects["cfg"] = cfg
    with quiet_third_party():
        return _evaluate(cfg, objects, overrides)


def _evaluate(
    cfg: DictConfig, objects: dict[str, Any], overrides: Sequence[str] | None
) -> tuple[dict[str, float], dict[str, Any]]:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    log.info("run folder: %s", Path(cfg.paths.output_dir).resolve())
    restored, ckpt = None, None
    if cfg.get("ckpt_path") and cfg.get("use_checkpoint_config", True):
        restored = restore_run(cfg, overrides=overrides)
        cfg, ckpt = restored.cfg, restored.ckpt
        log.info(
            "restored from %s: %s on %s data%s", restored.path, cfg.model._target_,
            cfg.data.get("source"),
            f" (experiment {restored.experiment})" if restored.experiment else "",
        )  # fmt: skip
        for note in restored.notes:
            log.info("  from the command line: %s", note)
    elif cfg.get("ckpt_path"):
        ckpt = load_checkpoint(cfg.ckpt_path)
        log.info("use_checkpoint_config=false: evaluating the config as composed")
    model_cfg = cfg.model
    cls = hydra.utils.get_class(model_cfg._target_)
    if ckpt is None and not getattr(cls, "eval_only", False):
        raise ValueError(
            f"{model_cfg._target_} is trained: pass ckpt_path=/path/to/last.ckpt to evaluate.py"
        )
    datamodule = objects["datamodule"] = hydra.utils.instantiate(cfg.data, _convert_="all")
    if restored is not None:
        check_label_space(restored, datamodule, getattr(cls, "open_vocabulary", True))
    model = objects["model"] = hydra.utils.instantiate(model_cfg, _convert_="all")
    if ckpt is not None:
        model.on_load_checkpoint(ckpt)
        model.load_state_dict(ckpt["state_dict"], strict=False)
        if load_ema_average(model, ckpt, cfg.get("ema")):
            log.info("evaluating the EMA average of the checkpoint's weights (ema=false: live)")
    model.run_config = resolved_config(cfg)
    callbacks = objects["callbacks"] = instantiate_callbacks(cfg.get("callbacks"))
    loggers = objects["loggers"] = instantiate_loggers(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    objects["trainer"] = trainer
    params = hyperparameters(model.run_config, model)
    log_hyperparameters(trainer.loggers, params)
    trainer.test(model=model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if (cfg.get("eval") or {}).get("saliency"):
        metrics.update(_saliency(cfg, model, datamodule))
    if trainer.is_global_zero:
        name = cls.__name__
        method = getattr(getattr(model, "hparams", None), "method", None)
        if isinstance(method, str) and method.lower() != name.lower():
            name += f" - {method}"  # e.g. a LaZSL baseline: "LaZSL - cupl"
        where = f" on {datamodule.dataset_name}"
        print_results(metrics, f"{name}{where} ({cfg.get('task_name', 'eval')})")
        path = write_metrics(
            Path(cfg.paths.output_dir) / "metrics.json", metrics,
            checkpoint=str(cfg.ckpt_path) if cfg.get("ckpt_path") else None,
        )  # fmt: skip
        log.info("metrics: %s", path)
    log_hparams_metrics(trainer.loggers, params, metrics)
    objects["cfg"] = cfg  # the restored config
    return metrics, objects
