"""Read ramlico checkpoints safely (``torch.load(..., weights_only=True)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint"]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by a ramlico run, with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a ramlico checkpoint (no ``"ramlico"`` entry).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path}. Checkpoints are written to "
            "logs/train/runs/<date>/checkpoints/ (last.ckpt is the latest)."
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "ramlico" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a ramlico checkpoint (no 'ramlico' entry with the run config); "
            "it must be written by `python train.py`"
        )
    return ckpt
