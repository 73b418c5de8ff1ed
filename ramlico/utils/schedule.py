"""Epoch-wise learning-rate schedules."""

from __future__ import annotations

import math

__all__ = ["warmup_cosine_lr"]


def warmup_cosine_lr(
    epoch: int,
    base_lr: float,
    *,
    warmup_epochs: int = 3,
    warmup_lr: float = 5e-7,
    min_lr: float = 1e-7,
    max_epochs: int = 60,
) -> float:
    """Learning rate of 1-based ``epoch`` (timm-style cosine with linear warm-up, RAM's schedule).

    ::

        lr(t) = warmup_lr + t (base_lr - warmup_lr) / warmup_epochs              t < warmup_epochs
        lr(t) = min_lr + (base_lr - min_lr) (1 + cos(pi t / max_epochs)) / 2    otherwise

    RAM steps it at the start of epochs 1..6 with ``max_epochs = 60`` (so the cosine is cut early):
    for ``base_lr = 5e-6`` the epochs get 2.0e-6, 3.5e-6, 4.970e-6, 4.946e-6, 4.917e-6, 4.880e-6.
    """
    if epoch < warmup_epochs:
        return warmup_lr + epoch * (base_lr - warmup_lr) / warmup_epochs
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / max_epochs))
