"""Write what a zero-shot evaluation found: per-image top-k predictions and explanations.

After ``trainer.test`` of a zero-shot method (``zero_shot_outputs = True``: LaZSL, OTFusion;
:meth:`RamlicoModule.prediction_summary` says what it ran), :class:`ZeroShotWriter` writes into the
run
directory (``trainer.default_root_dir``; ``<run dir>/<split>`` when several splits were
tested):

* ``predictions.csv`` -- per image (dataset-index order): index, path, true class, correct, the
  ``top_k`` classes and scores (:class:`ramlico.zeroshot.predictions.PredictionLog`);
* ``zero_shot_metrics.json`` -- the method's summary (method, dataset, model, ...), the number of
  images and top-1 / top-k accuracy;
* ``lazsl_explanations.json`` and ``lazsl_explanations/<index>.png`` -- the explanations and
  panels a method returned from ``test_step`` (LaZSL's ``explain_images``).

Where the scores come from: inductive methods return them from ``test_step`` (the batch's
``scores``, ``targets`` and dataset ``index``), transductive ones (OTFusion) leave the whole
split's in ``pl_module.epoch_outputs`` at the end of the test epoch. Under DDP every rank takes
part in the gathering, and rank 0 writes each file once, rows in dataset-index order.

Both methods add a default writer when the run's callbacks have none (``callbacks=none``
still writes the files); ``callbacks.zero_shot_writer.*`` in ``configs/callbacks/eval.yaml``
configures it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch import Callback

from ramlico.utils import get_logger
from ramlico.utils.distributed import all_gather_objects
from ramlico.zeroshot.predictions import PredictionLog, dataset_info

__all__ = ["ZeroShotWriter"]

log = get_logger(__name__)


class ZeroShotWriter(Callback):
    """``predictions.csv``, ``zero_shot_metrics.json`` and explanations of zero-shot test runs.

    Args:
        predictions: write ``predictions.csv`` and ``zero_shot_metrics.json``.
        top_k: classes listed per image.
        explanations: write the explanations (and panels) the method returned.
        explanations_file: their JSON file in the run directory; the panels go to the folder
            of the same stem (``lazsl_explanations/<index>.png``).
    """

    def __init__(
        self,
        predictions: bool = True,
        top_k: int = 5,
        explanations: bool = True,
        explanations_file: str = "lazsl_explanations.json",
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.predictions, self.top_k = predictions, top_k
        self.explanations, self.explanations_file = explanations, explanations_file
        self._logs: dict[str, PredictionLog] = {}
        self._records: list[dict[str, Any]] = []
        self._panels: list[tuple[int, Any]] = []
        self._active = False

    def on_test_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._logs, self._records, self._panels = {}, [], []
        self._active = bool(getattr(pl_module, "zero_shot_outputs", False))

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if not (self._active and isinstance(outputs, dict)):
            return
        self._records += outputs.get("explanations", [])
        self._panels += outputs.get("panels", [])
        if "scores" in outputs:
            scores = outputs["scores"]
            index = outputs.get("index")
            index = torch.arange(scores.shape[0]) if index is None else index.cpu()
            log_ = self._logs.setdefault(outputs["split"], PredictionLog(k=self.top_k))
            log_.add(index, scores, outputs["targets"])

    def on_test_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not self._active:
            return
        # Collectives first (every rank), then rank 0 writes once, in dataset-index order.
        records = sorted(sum(all_gather_objects(self._records), []),
                         key=lambda r: r["image_index"])  # fmt: skip
        panels = sorted(sum(all_gather_objects(self._panels), []), key=lambda p: p[0])
        splits = list(pl_module.eval_splits)
        logs = {s: self._logs.get(s, PredictionLog(k=self.top_k)).gather(pl_module.device)
                for s in splits}  # fmt: skip
        self._logs, self._records, self._panels = {}, [], []
        if not trainer.is_global_zero:
            return
        root = Path(trainer.default_root_dir)
        if self.explanations:
            self._write_explanations(root, records, panels)
        if not self.predictions:
            return
        for split, part in pl_module.epoch_outputs.items():
            log_ = PredictionLog(k=self.top_k)  # rows in dataset order already
            log_.add(part["index"], part["scores"], part["targets"])
            logs[split] = log_
        written = [s for s in splits if len(logs[s])]
        for split in written:
            summary = pl_module.prediction_summary(split)
            if summary is None:
                continue
            folder = root / split if len(written) > 1 else root
            _, paths = dataset_info(pl_module.datamodule, split)
            out = logs[split].write(folder, pl_module.label_names[split], info=summary,
                                    paths=paths)  # fmt: skip
            log.info("wrote %d %s predictions to %s", len(logs[split]), summary["method"], out)

    def _write_explanations(
        self, root: Path, records: list[dict[str, Any]], panels: list[tuple[int, Any]]
    ) -> None:
        if records:
            out = root / self.explanations_file
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(records, indent=1))
            log.info("wrote %d explanations to %s", len(records), out)
        folder = root / Path(self.explanations_file).stem
        for index, panel in panels:
            folder.mkdir(parents=True, exist_ok=True)
            panel.save(folder / f"{index:05d}.png")
