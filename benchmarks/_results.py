"""Shared by the benchmark scripts: write a result as JSON (parent folders created)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(result: Any, out: str | Path, indent: int = 1) -> None:
    """Write ``result`` to ``out`` as JSON (``benchmarks/results/`` is git-ignored)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=indent))
