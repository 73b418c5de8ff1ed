"""Per-image predictions of a zero-shot run: top-k classes and scores, CSV and metrics JSON.

Written by the LaZSL and OTFusion modules to ``<run dir>/predictions.csv`` and
``<run dir>/zero_shot_metrics.json``; :func:`results_table` collects the metrics of several runs
into a method x dataset table (``python -m ramlico.zeroshot.predictions logs/eval/runs/*``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ramlico.utils.distributed import all_gather_rows

if TYPE_CHECKING:
    from ramlico.data.base import RamlicoDataModule

__all__ = ["PredictionLog", "dataset_info", "results_table"]

Tensor = torch.Tensor
METRICS_FILE = "zero_shot_metrics.json"


class PredictionLog:
    """Accumulates the top-``k`` classes of every evaluated image (CPU, ``O(N k)`` memory).

    Args:
        k: classes kept per image (5).
    """

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.index: list[Tensor] = []
        self.labels: list[Tensor] = []
        self.top_index: list[Tensor] = []
        self.top_score: list[Tensor] = []

    def __len__(self) -> int:
        return sum(len(i) for i in self.index)

    def add(self, index: Tensor, scores: Tensor, labels: Tensor) -> None:
        """Record a batch.

        Args:
            index: ``(B,)`` dataset indices; scores: ``(B, K)``; labels: ``(B,)`` class indices.
        """
        sizes = {scores.shape[0], labels.shape[0], index.shape[0]}
        if scores.dim() != 2 or labels.dim() != 1 or index.dim() != 1 or len(sizes) != 1:
            raise ValueError(
                f"scores (B, K), labels (B,), index (B,) expected; got {tuple(scores.shape)}, "
                f"{tuple(labels.shape)}, {tuple(index.shape)}"
            )
        val, idx = scores.detach().float().topk(min(self.k, scores.shape[1]), dim=1)
        self.index.append(index.detach().cpu().long())
        self.labels.append(labels.detach().cpu().long())
        self.top_index.append(idx.cpu())
        self.top_score.append(val.cpu())

    def gather(self, device: torch.device | str | None = None) -> PredictionLog:
        """All processes' rows (DDP; a collective: call it on every rank), sorted by dataset
        index; in one process the rows sorted likewise. ``device``: where the collective runs
        (``module.device``)."""
        width = self.top_index[0].shape[1] if self.top_index else self.k
        index, labels, top_i, top_s = (
            all_gather_rows(torch.cat(rows) if rows else empty, device)
            for rows, empty in (
                (self.index, torch.zeros(0, dtype=torch.long)),
                (self.labels, torch.zeros(0, dtype=torch.long)),
                (self.top_index, torch.zeros(0, width, dtype=torch.long)),
                (self.top_score, torch.zeros(0, width)),
            )
        )
        order = index.argsort()
        out = PredictionLog(self.k)
        if len(order):
            out.index, out.labels = [index[order]], [labels[order]]
            out.top_index, out.top_score = [top_i[order]], [top_s[order]]
        return out

    def metrics(self) -> dict[str, float]:
        """Top-1 and top-k accuracy in percent over the recorded images."""
        labels, top = torch.cat(self.labels), torch.cat(self.top_index)
        hit = top == labels[:, None]
        return {"top1": 100.0 * hit[:, 0].double().mean().item(),
                f"top{top.shape[1]}": 100.0 * hit.any(dim=1).double().mean().item()}  # fmt: skip

    def write(
        self,
        folder: str | Path,
        class_names: Sequence[str],
        *,
        paths: Sequence[str | Path] | None = None,
        info: dict | None = None,
    ) -> Path:
        """Write ``predictions.csv`` and ``zero_shot_metrics.json`` into ``folder``.

        CSV columns: ``index, path, true_index, true_class, correct, top{j}_class, top{j}_score``
        for ``j = 1..k`` (``path`` empty when ``paths`` is not given).

        Args:
            folder: the run directory.
            class_names: ``K`` names of the scored classes.
            paths: dataset image paths, indexed by ``index``.
            info: extra fields of the metrics JSON (method, dataset, ...).

        Returns:
            the CSV path.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        index, labels = torch.cat(self.index).tolist(), torch.cat(self.labels).tolist()
        top_i, top_s = torch.cat(self.top_index).tolist(), torch.cat(self.top_score).tolist()
        k = len(top_i[0]) if top_i else self.k
        header = ["index", "path", "true_index", "true_class", "correct"]
        header += [f"top{j}_{c}" for j in range(1, k + 1) for c in ("class", "score")]
        out = folder / "predictions.csv"
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for n, y, ti, ts in zip(index, labels, top_i, top_s, strict=True):
                row = [n, str(paths[n]) if paths is not None else "", y, class_names[y],
                       int(ti[0] == y)]  # fmt: skip
                for c, s in zip(ti, ts, strict=True):
                    row += [class_names[c], f"{s:.6g}"]
                writer.writerow(row)
        record = {**(info or {}), "images": len(index), **self.metrics()}
        (folder / METRICS_FILE).write_text(json.dumps(record, indent=1))
        return out


def dataset_info(datamodule: RamlicoDataModule, split: str) -> tuple[str, list[str] | None]:
    """``(dataset name, image paths of split by dataset index or None)`` of a run's data."""
    paths = datamodule.image_paths(split)
    return datamodule.dataset_name, ([str(p) for p in paths] if paths is not None else None)


def results_table(run_dirs: Sequence[str | Path], metric: str = "top1") -> str:
    """A method x dataset text table of ``metric`` from runs' ``zero_shot_metrics.json``.

    Runs without the file are skipped; the last run of a (method, dataset) pair wins.
    """
    cells: dict[tuple[str, str], float] = {}
    for run in run_dirs:
        path = Path(run) / METRICS_FILE
        if path.is_file():
            rec = json.loads(path.read_text())
            cells[(rec.get("method", "?"), rec.get("dataset", "?"))] = rec[metric]
    methods = sorted({m for m, _ in cells})
    datasets = sorted({d for _, d in cells})
    width = max([len(m) for m in methods] + [6])
    lines = [f"{metric:<{width}} " + " ".join(f"{d:>12}" for d in datasets)]
    for m in methods:
        vals = [f"{cells[(m, d)]:12.2f}" if (m, d) in cells else f"{'-':>12}" for d in datasets]
        lines.append(f"{m:<{width}} " + " ".join(vals))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - thin CLI
    sys.stdout.write(results_table(sys.argv[1:]) + "\n")
