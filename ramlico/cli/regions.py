"""Region evidence in train.py / evaluate.py: scored where the test data records its objects.

``eval.regions=true`` (the default) scores each test split whose data has ground-truth geometry
(the generated toy-world sets; your JSON-lines files with ``objects``) with
:func:`ramlico.explain.region_evaluation.evaluate_regions`: the method's evidence next to zero-shot
CLIP's patch similarity and the uniform map. Metrics:
``regions/<split>/<source>/pointing`` and ``.../mass`` (percent), printed as a second table.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ramlico.explain.region_evaluation import default_evidence, evaluate_regions
from ramlico.utils import get_logger

__all__ = ["region_metrics", "regions_table"]

log = get_logger(__name__)


def _loaders(datamodule: Any) -> list:
    loaders = datamodule.test_dataloader()
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]


def region_metrics(model: Any, datamodule: Any, tolerance: float = 0.0) -> dict[str, float]:
    """``{"regions/<split>/<source>/<pointing|mass>": %}`` for every split with geometry."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for split, loader in zip(model.eval_splits, _loaders(datamodule), strict=True):
        names = model.label_names[split]
        scores = evaluate_regions(loader, names, default_evidence(model, split), tolerance)
        for source, values in scores.items():
            for key, value in values.items():
                out[f"regions/{split}/{source}/{key}"] = value
    model.train(was_training)
    if out:
        log.info("region evidence scored against the data's objects (%d values)", len(out))
    return out


def regions_table(metrics: dict[str, float], title: str) -> Table | None:
    """Rows: evidence sources; columns: pointing game and mass per split. ``None`` if none."""
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == "regions":
            column = f"{parts[1].upper()} {parts[3]}"
            rows.setdefault(parts[2], {})[column] = value
            if column not in columns:
                columns.append(column)
    if not rows:
        return None
    table = Table(title=title)
    table.add_column("evidence")
    for c in columns:
        table.add_column(c, justify="right")
    for source, vals in rows.items():
        table.add_row(source, *(f"{vals[c]:.1f}" if c in vals else "-" for c in columns))
    return table
