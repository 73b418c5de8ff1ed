"""``predict(cfg)``: tag images with a checkpoint or a training-free experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from ramlico.cli.instantiate import instantiate_callbacks, instantiate_loggers
from ramlico.cli.wrapper import task_wrapper
from ramlico.predict.build import build_from_checkpoint, build_from_config
from ramlico.predict.data import ImagePredictionData
from ramlico.predict.images import find_images
from ramlico.utils import get_logger

__all__ = ["predict", "read_labels"]

log = get_logger(__name__)


def read_labels(labels: Any, labels_file: str | None, default: list[str] | None) -> list[str]:
    """The label list: ``labels_file`` (one per line), else ``labels``, else ``default``.

    Raises:
        FileNotFoundError / ValueError: a missing or empty file, or no labels at all.
    """
    if labels_file:
        path = Path(labels_file)
        if not path.is_file():
            raise FileNotFoundError(f"labels_file not found: {path} (one label per line)")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n and not n.startswith("#")]
        if not names:
            raise ValueError(f"labels_file {path} has no label (one label per line)")
        return names
    if labels:
        return [str(n) for n in ([labels] if isinstance(labels, str) else labels)]
    if default:
        return list(default)
    raise ValueError(
        "no labels: pass labels='[cat,dog]' or labels_file=labels.txt (a checkpoint also offers "
        "its test labels as the default)"
    )


@task_wrapper
def predict(cfg: DictConfig, objects: dict[str, Any]) -> tuple[list[dict[str, Any]], dict]:
    """Tag every image of ``cfg.inputs``; write predictions, heatmaps and the gallery.

    Called as ``predict(cfg)`` (:func:`ramlico.cli.wrapper.task_wrapper`).

    Returns:
        ``(records, objects)``: one dict per image (as in ``predictions.jsonl``) and the objects
        built (``model``, ``datamodule``, ``trainer``, ``writer``).
    """
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    objects["cfg"] = cfg
    if cfg.get("ckpt_path"):
        built = build_from_checkpoint(cfg.ckpt_path, cfg=cfg, ema=cfg.get("ema"))
    else:
        built = build_from_config(cfg)
    labels = read_labels(cfg.get("labels"), cfg.get("labels_file"), built.labels)
    files = find_images(list(cfg.inputs) if not isinstance(cfg.inputs, str) else cfg.inputs,
                        recursive=bool(cfg.get("recursive")))  # fmt: skip
    log.info("tagging %d images with %d labels (%s)", len(files), len(labels),
             type(built.model).__name__)  # fmt: skip
    datamodule = ImagePredictionData(
        files, labels, built.transform, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
        evidence=bool(cfg.heatmaps), normalization=built.normalization,
    )  # fmt: skip
    model = built.model
    model.calibration = built.calibration.to_dict() if built.calibration.fitted else None
    callbacks = objects["callbacks"] = instantiate_callbacks(cfg.get("callbacks"))
    loggers = objects["loggers"] = instantiate_loggers(cfg.get("logger"))
    precision = cfg.get("precision", "auto")
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, precision=precision,
        inference_mode=False,  # LICO's Grad-CAM needs gradients
    )  # fmt: skip
    trainer.predict(model=model, datamodule=datamodule, return_predictions=False)
    writer = next((c for c in callbacks if hasattr(c, "records")), None)
    records = writer.records if writer is not None else []
    objects.update(model=model, datamodule=datamodule, trainer=trainer, writer=writer)
    return records, objects
