"""Write a prediction run: predictions.jsonl / .csv, heatmap overlays, panels and the gallery.

Files under ``output_dir`` (the run directory):

* ``predictions.jsonl`` -- one JSON object per image: ``image``, ``width``, ``height``, ``tags``
  and, per label, ``score``, ``probability``, ``threshold`` (+ ``peak_xy`` and ``box_xyxy`` of
  its heatmap), and the files below;
* ``predictions.csv`` -- one row per image: ``image, tags``, then ``<label>_score`` and
  ``<label>_probability`` for every label;
* ``heatmaps/<nnnnn>_<image stem>/<label>.png`` -- the label's region evidence over the original
  image (RAM: OT plan; CLIP: patch similarity; LICO: Grad-CAM), the ``max_heatmaps`` most
  probable labels of each image;
* ``panels/<nnnnn>_<image stem>.png`` -- LaZSL's descriptor / crop panel (where there is one);
* ``thumbnails/<nnnnn>_<image stem>.jpg`` and ``index.html`` -- the static gallery.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from ramlico.callbacks._collect import gather_objects
from ramlico.explain.heatmaps import heatmap_overlay
from ramlico.predict.calibration import Calibration
from ramlico.predict.gallery import write_gallery
from ramlico.predict.images import load_image
from ramlico.predict.predictor import make_predictions
from ramlico.utils import get_logger

__all__ = ["PredictionWriter", "slug"]

log = get_logger(__name__)
THUMB_SIDE = 256


def slug(text: str) -> str:
    """A file-name-safe version of a label or file stem (``"red circle"`` -> ``red_circle``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


class PredictionWriter(BasePredictionWriter):
    """Write every predicted batch's outputs; the tables and the gallery at the end.

    Args:
        output_dir: the run directory.
        threshold: one tag threshold for all labels (overrides the calibrated ones).
        top_k: at most this many tags per image (alone: exactly the top ``k``).
        heatmaps: write heatmap overlays (methods with region evidence).
        max_heatmaps: overlays per image (most probable labels first); ``None`` = every label.
        gallery: write ``index.html`` and thumbnails.
        alpha: weight of the heat colours in the overlays.
    """

    def __init__(
        self,
        output_dir: str,
        threshold: float | None = None,
        top_k: int | None = None,
        heatmaps: bool = True,
        max_heatmaps: int | None = 20,
        gallery: bool = True,
        alpha: float = 0.5,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.threshold, self.top_k = threshold, top_k
        self.heatmaps, self.max_heatmaps = heatmaps, max_heatmaps
        self.gallery, self.alpha = gallery, alpha
        self.records: list[dict[str, Any]] = []
        self.labels: list[str] = []

    def on_predict_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.records = []
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: Any, prediction: Any, batch_indices: Any,
        batch: Any, batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        loaders = trainer.predict_dataloaders
        loader = loaders[dataloader_idx] if isinstance(loaders, list) else loaders
        assert loader is not None  # a batch came from it
        dataset = loader.dataset
        index = [int(i) for i in prediction["index"]]
        originals = [load_image(dataset.sources[i]) for i in index]
        self.labels = list(pl_module.label_names["predict"])
        preds = make_predictions(
            prediction["out"], self.labels, Calibration.from_dict(pl_module.calibration),
            [dataset.name(i) for i in index], [im.size for im in originals],
            threshold=self.threshold, top_k=self.top_k,
        )  # fmt: skip
        for i, pred, image in zip(index, preds, originals, strict=True):
            stem = f"{i:05d}_{slug(Path(pred.image).stem)}"
            record = pred.to_record()
            record["index"] = i
            if self.heatmaps and pred.heatmaps is not None:
                record["heatmap_files"] = self._write_heatmaps(stem, pred, image)
            if pred.panel is not None:
                (self.output_dir / "panels").mkdir(exist_ok=True)
                record["panel_file"] = f"panels/{stem}.png"
                pred.panel.save(self.output_dir / record["panel_file"])
            if self.gallery:
                (self.output_dir / "thumbnails").mkdir(exist_ok=True)
                thumb = image.copy()
                thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
                record["thumbnail"] = f"thumbnails/{stem}.jpg"
                thumb.save(self.output_dir / record["thumbnail"], quality=90)
            self.records.append(record)

    def _write_heatmaps(self, stem: str, pred: Any, image: Any) -> dict[str, str]:
        folder = self.output_dir / "heatmaps" / stem
        folder.mkdir(parents=True, exist_ok=True)
        order = sorted(range(len(pred.labels)), key=lambda c: -float(pred.probabilities[c]))
        files = {}
        for c in order[: self.max_heatmaps]:
            name = pred.labels[c]
            rel = f"heatmaps/{stem}/{slug(name)}.png"
            heatmap_overlay(image, pred.heatmaps[c], alpha=self.alpha).save(self.output_dir / rel)
            files[name] = rel
        return files

    def on_predict_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        records = [r for part in gather_objects(self.records) for r in part]
        if not trainer.is_global_zero:
            return
        records.sort(key=lambda r: r["index"])
        with (self.output_dir / "predictions.jsonl").open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        with (self.output_dir / "predictions.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", "tags", *[f"{n}_{k}" for n in self.labels
                                                for k in ("score", "probability")]])  # fmt: skip
            for r in records:
                cells = [f"{r['labels'][n][k]:.6g}" for n in self.labels
                         for k in ("score", "probability")]  # fmt: skip
                writer.writerow([r["image"], "|".join(r["tags"]), *cells])
        if self.gallery:
            cal = Calibration.from_dict(pl_module.calibration)
            info = {"method": type(pl_module).__name__, "labels": len(self.labels),
                    "calibrated": cal.fitted}  # fmt: skip
            write_gallery(self.output_dir, records, info=info)
        log.info("wrote %d predictions to %s", len(records), self.output_dir)
