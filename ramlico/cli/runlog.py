"""What a run prints: the run folder, one line per epoch off a terminal, checkpoints, metrics file.

* :func:`quiet_third_party` silences chatter that says nothing about the run (open_clip's
  "Parsing model identifier ..." info lines, Lightning's hardware lines and tips) and a few
  warnings that do not apply to ramlico's setup (named below), for the duration of a task.
  Everything else (ramlico's own warnings, Sinkhorn convergence, real Lightning warnings) stays.
* :class:`EpochSummary`: one line per epoch (``epoch 3/6  train/loss 0.512  val/seen/mAP 41.2
  (best 41.2)  12.3 s``) when the output is not a terminal (a log file, CI, ``nohup``), where no
  progress bar is drawn.
* :func:`write_metrics`: the final metrics as ``metrics.json`` in the run folder.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch import Callback

from ramlico.utils import get_logger
from ramlico.utils.logging import stdlib_logger

__all__ = ["EpochSummary", "quiet_third_party", "write_metrics"]

log = get_logger(__name__)

#: Warnings that do not apply to ramlico runs (message regex, why).
HARMLESS_WARNINGS: tuple[tuple[str, str], ...] = (
    (r"Found \d+ module\(s\) in eval mode at the start of training",
     "frozen backbones stay in eval mode on purpose (dropout / BN statistics never change)"),
    (r"The '\w+_dataloader' does not have many workers",
     "the demos load small generated images in the main process (data.num_workers)"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated",
     "an internal torch / Lightning version notice"),
    (r"The dirpath has changed from",
     "a resumed run writes to its original folder (its best-k bookkeeping is restored)"),
)  # fmt: skip


class _DropOpenClipInfo(logging.Filter):
    """open_clip logs through the root logger; keep only its warnings (minus the intended one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "open_clip" not in record.pathname:
            return True
        if record.levelno >= logging.WARNING:
            # pretrained=null is how ramlico builds seeded random towers (tests, demos)
            return "No pretrained weights loaded" not in record.getMessage()
        return False


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Within the block: no open_clip info lines, no Lightning info lines (hardware, tips), and
    the :data:`HARMLESS_WARNINGS` ignored. Restores everything on exit."""
    root = stdlib_logger()
    lightning_info = stdlib_logger("lightning.pytorch.utilities.rank_zero")
    fabric_info = stdlib_logger("lightning.fabric.utilities.rank_zero")
    levels = [(lg, lg.level) for lg in (lightning_info, fabric_info)]
    drop = _DropOpenClipInfo()
    root.addFilter(drop)
    for lg, _ in levels:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern, _why in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        root.removeFilter(drop)
        for lg, level in levels:
            lg.setLevel(level)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"


class EpochSummary(Callback):
    """One log line per training epoch, after its validation.

    Args:
        when: ``"auto"`` (only when stdout is not a terminal, where the progress bar shows the
            same), ``"always"`` or ``"never"``.
        monitor: the validation metric to report with its best value so far (``optimized_metric``).
    """

    def __init__(self, when: str = "auto", monitor: str | None = None) -> None:
        if when not in ("auto", "always", "never"):
            raise ValueError(f"EpochSummary when={when!r}; choose auto, always or never")
        self.when = when
        self.monitor = monitor
        self.best: float | None = None
        self._start = 0.0

    @property
    def enabled(self) -> bool:
        if self.when == "auto":
            return not sys.stdout.isatty()
        return self.when == "always"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def line(self, trainer: L.Trainer) -> str:
        """The summary of the epoch that just ended, from ``trainer.callback_metrics``."""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for key in sorted(metrics):
            if key.startswith("train/loss") and key.count("/") == 1 or key.startswith("val/"):
                parts.append(f"{key} {_fmt(metrics[key])}")
        value = metrics.get(self.monitor) if self.monitor else None
        if value is not None:
            self.best = value if self.best is None else max(self.best, value)
            parts.append(f"(best {self.monitor} {_fmt(self.best)})")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        return "  ".join(parts)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and not trainer.sanity_checking:
            log.info("%s", self.line(trainer))


def write_metrics(path: Path, metrics: dict[str, float], **extra: Any) -> Path:
    """Write ``{"metrics": {...}, **extra}`` as JSON (sorted keys); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"metrics": {k: float(v) for k, v in sorted(metrics.items())}, **extra}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
