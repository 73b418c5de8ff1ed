"""Fit per-label probabilities and tag thresholds on the validation split (saved in checkpoints).

After every validation epoch :class:`CalibrationFitter` fits Platt scaling and the F1-optimal
threshold(s) (:func:`ramlico.predict.calibration.fit_calibration`) on the validation logits of
one split, stores them in ``pl_module.calibration`` -- which the checkpoint written after this
validation carries (``ckpt["ramlico"]["calibration"]``) -- and logs ``val/<split>/tag_F1``
(micro-F1 of the tags at the fitted thresholds, percent). ``predict.py`` and
``ramlico.load_predictor`` use it.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch import Callback

from ramlico.callbacks._collect import SplitCollector, one_hot_targets
from ramlico.predict.calibration import MODES, fit_calibration
from ramlico.utils import get_logger

__all__ = ["CalibrationFitter"]

log = get_logger(__name__)


class CalibrationFitter(Callback):
    """Calibrate on validation batches.

    Args:
        split: the validation split to fit on; ``None`` = the one with the most labels (``seen``
            for a held-out part of the training data, ``gzsl`` when validation runs on the test
            splits).
        mode: ``"global"`` (one threshold, micro-F1 optimal) or ``"per_label"``.
        min_positives: validation positives a label needs for its own threshold.
    """

    def __init__(self, split: str | None = None, mode: str = "global", min_positives: int = 3):
        if mode not in MODES:
            raise ValueError(f"calibration mode must be one of {MODES}, got {mode!r}")
        self.split, self.mode, self.min_positives = split, mode, min_positives
        self.collector = SplitCollector()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.collector.clear()

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if isinstance(outputs, dict) and "logits" in outputs and not trainer.sanity_checking:
            self.collector.add(outputs["split"], outputs)

    def _choose(self, pl_module: Any, splits: list[str]) -> str | None:
        if self.split is not None:
            if self.split not in splits:
                raise ValueError(
                    f"callbacks.calibration.split={self.split!r} has no validation batches; "
                    f"validated splits: {splits}"
                )
            return self.split
        return max(splits, key=lambda s: len(pl_module.label_names[s]), default=None)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or not self.collector.parts:
            return
        data = self.collector.gathered()
        split = self._choose(pl_module, sorted(data))
        if split is None:
            return
        names = pl_module.label_names[split]
        part = data[split]
        targets = one_hot_targets(part["targets"], len(names))
        if targets.min() == targets.max():
            log.warning("calibration skipped: split '%s' has no positive or no negative", split)
            return
        cal = fit_calibration(
            part["logits"], targets, names, mode=self.mode, min_positives=self.min_positives,
            info={"split": split, "epoch": int(trainer.current_epoch)},
        )  # fmt: skip
        pl_module.calibration = cal.to_dict()
        # every rank fitted on the gathered batches: equal values, the mean is that value
        pl_module.log(f"val/{split}/tag_F1", cal.info["tag_f1"], sync_dist=True)
        self.collector.clear()
