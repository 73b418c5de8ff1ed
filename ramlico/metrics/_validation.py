"""Input checks shared by :mod:`ramlico.metrics.functional` and the metric classes.

Every check raises with the offending value and the fix (style.md, "Errors name the bad value").
"""

from __future__ import annotations

import torch
from torch import Tensor

EMPTY_LABEL_AP_MODES = ("zero", "skip")


def _out_dtype(scores: Tensor) -> torch.dtype:
    if scores.is_floating_point():
        return torch.promote_types(scores.dtype, torch.float32)
    return torch.float32


def _check_scores(scores: Tensor) -> Tensor:
    if not isinstance(scores, Tensor):
        raise TypeError(
            f"scores must be a torch.Tensor of shape (N, C), got {type(scores).__name__}"
        )
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(
            f"scores must be a non-empty 2-D tensor (N images, C labels), got shape "
            f"{tuple(scores.shape)}; stack the per-image score vectors into one (N, C) tensor"
        )
    if scores.is_complex() or scores.dtype == torch.bool:
        raise TypeError(f"scores must be real numbers, got dtype {scores.dtype}")
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN; NaN has no rank, fix the model output before scoring")
    return scores.detach()


def _check_multilabel(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Validate ``(N, C)`` scores and targets; return scores and boolean targets (-1 -> False)."""
    scores = _check_scores(scores)
    if not isinstance(targets, Tensor) or targets.shape != scores.shape:
        got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(
            f"targets must be a tensor of the same shape as scores {tuple(scores.shape)}, got {got}"
        )
    targets = targets.detach()
    valid = (targets == 1) | (targets == 0) | (targets == -1)
    if not bool(valid.all()):
        bad = targets[~valid][0].item()
        raise ValueError(
            f"targets must contain only 1 (positive), 0 or -1 (negative), got {bad}; "
            "binarise the ground truth first"
        )
    return scores, targets > 0


def _check_k(k: int, num_columns: int | None = None, what: str = "labels") -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if num_columns is not None and k > num_columns:
        raise ValueError(
            f"k={k} exceeds the number of {what} C={num_columns}; use k <= {num_columns} "
            "(docs/metrics.md: every image predicts exactly k of them)"
        )


def _check_empty_label_ap(empty_label_ap: str) -> None:
    if empty_label_ap not in EMPTY_LABEL_AP_MODES:
        raise ValueError(
            f"empty_label_ap must be one of {EMPTY_LABEL_AP_MODES}, got {empty_label_ap!r}; "
            "'zero' counts labels without positives as AP 0 (literature parity), "
            "'skip' averages over labels with positives only"
        )


def _check_single_label(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    scores = _check_scores(scores)
    n, c = scores.shape
    if not isinstance(labels, Tensor) or labels.shape != (n,):
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape (N,) = ({n},), got {got}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if bool(((labels < 0) | (labels >= c)).any()):
        bad = labels[(labels < 0) | (labels >= c)][0].item()
        raise ValueError(f"labels must lie in [0, C) = [0, {c}), got {bad}")
    return scores, labels.detach().long()
