"""Write what an evaluation found: per-image predictions, per-label AP and one results JSON.

After ``trainer.test`` (``evaluate.py``, and the test after ``train.py``) :class:`EvaluationWriter`
writes, beside the CSV logger's ``metrics.csv`` (else into the run directory):

* ``predictions_<split>.csv`` / ``.jsonl`` -- per test image: dataset index, path, true labels,
  the ``top_k`` labels with scores and calibrated probabilities, and the calibrated tags;
* ``per_label_ap_<split>.csv`` -- per label: AP (percent, tie-aware, as the mAP metric),
  positives, and the tags' precision / recall / F1 at the calibrated thresholds;
* ``results.json`` -- every logged ``test/...`` metric by split, per-label AP, the calibration
  used, the tag F1 at the calibrated thresholds and at 0.5, and the files written.

Every method that returns its batch scores from ``test_step`` (the scoring contract: RAM, CLIP
zero-shot, CLIP-Adapter, LICO, LaZSL) gets the per-image files; transductive ones that score at
the end of the epoch (OTFusion) get ``results.json`` (and write their own predictions).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger

from ramlico.callbacks._collect import SplitCollector, batch_indices, image_path, one_hot_targets
from ramlico.metrics.functional import average_precision_per_label
from ramlico.predict.calibration import Calibration, tag_f1
from ramlico.utils import get_logger

__all__ = ["EvaluationWriter", "RESULTS_FILE", "output_folder"]

log = get_logger(__name__)
Tensor = torch.Tensor
RESULTS_FILE = "results.json"


def output_folder(trainer: L.Trainer) -> Path:
    """The CSV logger's folder (where ``metrics.csv`` goes), else the run directory."""
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            return Path(logger.log_dir)
    return Path(trainer.default_root_dir)


def _metrics_by_split(metrics: dict[str, Any], stage: str = "test") -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage:
            out.setdefault(parts[1], {})[parts[2]] = float(value)
    return out


class EvaluationWriter(Callback):
    """Per-image predictions, per-label AP and ``results.json`` of every test run.

    Args:
        top_k: labels listed per image in the prediction files.
    """

    def __init__(self, top_k: int = 5) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.collector = SplitCollector()
        self._batches: dict[int, list[list[int]]] = {}

    def on_test_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.collector.clear()
        self._batches = {}

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if not (isinstance(outputs, dict) and "scores" in outputs):
            return
        if dataloader_idx not in self._batches:
            loaders = trainer.test_dataloaders
            loader = loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders
            self._batches[dataloader_idx] = batch_indices(loader)
        indices = self._batches[dataloader_idx][batch_idx]
        self.collector.add(outputs["split"], outputs, indices)

    def on_test_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        data = self.collector.gathered() if self.collector.parts else {}
        if not trainer.is_global_zero:
            return
        folder = output_folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        calibration = Calibration.from_dict(getattr(pl_module, "calibration", None))
        datasets = self._datasets(trainer)
        results: dict[str, Any] = {
            "method": type(pl_module).__name__,
            "metrics": _metrics_by_split(trainer.callback_metrics),
            "calibration": calibration.to_dict(),
            "per_label_ap": {},
            "tags": {},
            "files": [],
        }
        for split, part in data.items():
            names = list(pl_module.label_names[split])
            files, summary, ap = self._write_split(
                folder, split, names, part, calibration, datasets.get(split)
            )
            results["files"] += files
            results["tags"][split] = summary
            results["per_label_ap"][split] = ap
        (folder / RESULTS_FILE).write_text(json.dumps(results, indent=1))
        results["files"].append(RESULTS_FILE)
        log.info("wrote %s to %s", ", ".join(results["files"]), folder)
        self.collector.clear()

    @staticmethod
    def _datasets(trainer: L.Trainer) -> dict[str, Any]:
        loaders = trainer.test_dataloaders
        loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
        splits = list(getattr(trainer.lightning_module, "eval_splits", []))
        return {s: getattr(dl, "dataset", None) for s, dl in zip(splits, loaders, strict=False)}

    def _write_split(
        self, folder: Path, split: str, names: list[str], part: dict[str, Tensor],
        calibration: Calibration, dataset: Any,
    ) -> tuple[list[str], dict[str, float], dict[str, float]]:  # fmt: skip
        scores, targets = part["scores"], one_hot_targets(part["targets"], len(names))
        probs = calibration.probabilities(part["logits"])
        thresholds = calibration.thresholds(names)
        tagged = probs >= thresholds
        ap, _ = average_precision_per_label(scores, targets)
        k = min(self.top_k, len(names))
        top = scores.topk(k, dim=1).indices
        rows: list[dict[str, Any]] = []
        for i in range(scores.shape[0]):
            index = int(part["index"][i])
            rows.append({
                "index": index,
                "image": image_path(dataset, index) if dataset is not None and index >= 0 else "",
                "targets": [names[c] for c in torch.nonzero(targets[i]).flatten().tolist()],
                "top": [{"label": names[c], "score": float(scores[i, c]),
                         "probability": float(probs[i, c])} for c in top[i].tolist()],
                "tags": [names[c] for c in torch.argsort(probs[i], descending=True).tolist()
                         if tagged[i, c]],
            })  # fmt: skip
        jsonl, table = f"predictions_{split}.jsonl", f"predictions_{split}.csv"
        with (folder / jsonl).open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        with (folder / table).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "image", "targets", "tags",
                             *[f"top{j + 1}_{c}" for j in range(k) for c in ("label", "score")]])
            for row in rows:
                top_cells = [x for t in row["top"] for x in (t["label"], f"{t['score']:.6g}")]
                writer.writerow([row["index"], row["image"], "|".join(row["targets"]),
                                 "|".join(row["tags"]), *top_cells])  # fmt: skip
        per_label = f"per_label_ap_{split}.csv"
        tp = (tagged & targets.bool()).sum(0).float()
        precision = 100 * tp / tagged.sum(0).clamp_min(1)
        recall = 100 * tp / targets.sum(0).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        with (folder / per_label).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["label", "AP", "positives", "tag_precision", "tag_recall", "tag_F1",
                             "threshold"])  # fmt: skip
            for c, name in enumerate(names):
                writer.writerow([name, f"{float(ap[c]):.4f}", int(targets[:, c].sum()),
                                 f"{float(precision[c]):.2f}", f"{float(recall[c]):.2f}",
                                 f"{float(f1[c]):.2f}", f"{float(thresholds[c]):.6g}"])  # fmt: skip
        summary = {
            "images": int(scores.shape[0]),
            "calibrated": calibration.fitted,
            "tag_F1": 100 * tag_f1(probs, targets, thresholds),
            "tag_F1_at_0.5": 100 * tag_f1(probs, targets, 0.5),
        }
        return [jsonl, table, per_label], summary, {n: float(ap[c]) for c, n in enumerate(names)}
