"""The results table printed at the end of train.py and evaluate.py."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

__all__ = ["print_results", "regions_table", "results_table"]


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


def regions_table(metrics: dict[str, float], title: str) -> Table | None:
    """Rows: evidence sources; columns: pointing game and mass per split
    (``regions/<split>/<source>/<metric>``). ``None`` when there are none."""
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


def print_results(metrics: dict[str, float], title: str) -> None:
    """Print the results table and, where there are region metrics, the region table."""
    console = Console()
    console.print(results_table(metrics, title))
    regions = regions_table(metrics, f"{title}: region evidence (pointing game, mass inside, %)")
    if regions is not None:
        console.print(regions)
