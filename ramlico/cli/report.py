"""The results table printed at the end of train.py and evaluate.py."""

from __future__ import annotations

from rich.table import Table

__all__ = ["results_table"]


def results_table(metrics: dict[str, float], title: str) -> Table:
    """A rich table with one row per split and one column per metric (``test/<split>/<name>``)."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "test":
            rows.setdefault(parts[1], {})[parts[2]] = value
    names = sorted({n for r in rows.values() for n in r}, key=lambda n: (n == "mAP", n[-1], n))
    table = Table(title=title)
    table.add_column("split")
    for n in names:
        table.add_column(n, justify="right")
    for split, vals in rows.items():
        table.add_row(split.upper(), *(f"{vals[n]:.1f}" if n in vals else "-" for n in names))
    return table
