"""Read ramlico checkpoints safely (``torch.load(..., weights_only=True)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "load_trainable_weights"]


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


def load_trainable_weights(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model`` from another run's trainable tensors (fine-tuning, ``init_ckpt=``).

    Every tensor of the checkpoint must exist in ``model`` with the same shape; the model's
    trainable tensors that the checkpoint lacks keep their initialisation (returned).

    Raises:
        ValueError: a tensor the model does not have, or a shape mismatch (named).
    """
    ckpt = load_checkpoint(path)
    state = ckpt["state_dict"]
    own = model.state_dict()
    unknown = sorted(k for k in state if k not in own)
    wrong = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if unknown or wrong:
        detail = [f"unknown tensors {unknown[:5]}" if unknown else ""]
        detail += [
            f"shape mismatch {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in wrong[:5]
        ]
        raise ValueError(
            f"init_ckpt={path} does not fit this model ({'; '.join(d for d in detail if d)}); "
            "use a checkpoint of the same method and backbone (layers, prompt lengths)"
        )
    model.load_state_dict(state, strict=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return sorted(trainable - set(state))
