"""Epoch-wise learning-rate schedules: RAM's warm-up + cosine as a ``torch`` ``LambdaLR``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["WarmupCosineFactor", "warmup_cosine_lr", "warmup_cosine_scheduler"]


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


@dataclass
class WarmupCosineFactor:
    """``lr(k + 1) / base_lr`` of :func:`warmup_cosine_lr` for ``LambdaLR``'s epoch counter ``k``.

    ``LambdaLR`` multiplies each group's initial lr by its factor; the counter starts at 0 for the
    first epoch, which RAM calls ``t = 1``. Its fields are what ``LambdaLR.state_dict`` saves.
    """

    base_lr: float
    warmup_epochs: int
    warmup_lr: float
    min_lr: float
    max_epochs: int

    def __call__(self, k: int) -> float:
        if self.base_lr == 0:
            return 0.0
        lr = warmup_cosine_lr(
            k + 1,
            self.base_lr,
            warmup_epochs=self.warmup_epochs,
            warmup_lr=self.warmup_lr,
            min_lr=self.min_lr,
            max_epochs=self.max_epochs,
        )
        return lr / self.base_lr


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_epochs: int = 3,
    warmup_lr: float = 5e-7,
    min_lr: float = 1e-7,
    max_epochs: int = 60,
) -> LambdaLR:
    """RAM's schedule as a ``LambdaLR`` (one factor per param group), stepped once per epoch.

    Every group warms up linearly from the same absolute ``warmup_lr`` and decays to the same
    ``min_lr`` (:func:`warmup_cosine_lr` of the group's initial lr). ``LinearLR`` scales one start
    factor for all groups, and ``SequentialLR`` restarts ``CosineAnnealingLR``'s counter at the
    milestone, whereas RAM's cosine runs on the absolute epoch; so the factor is given to
    ``LambdaLR``. The scheduled lr equals the formula up to one rounding (``base * (lr / base)``).

    Args:
        optimizer: the optimiser (e.g. RAM's :class:`~ramlico.utils.optim.CombinedOptimizer`);
            each group's ``lr`` is its base lr.
        warmup_epochs, warmup_lr, min_lr, max_epochs: see :func:`warmup_cosine_lr`.

    Raises:
        ValueError: ``max_epochs < 1``, ``warmup_epochs < 0`` or a negative lr.
    """
    if max_epochs < 1 or warmup_epochs < 0:
        raise ValueError(
            f"warm-up + cosine needs max_epochs >= 1 and warmup_epochs >= 0, got {max_epochs} "
            f"and {warmup_epochs}"
        )
    if warmup_lr < 0 or min_lr < 0:
        raise ValueError(f"warmup_lr and min_lr must be >= 0, got {warmup_lr} and {min_lr}")
    factors = [
        WarmupCosineFactor(
            base_lr=float(group.get("initial_lr", group["lr"])),
            warmup_epochs=int(warmup_epochs),
            warmup_lr=float(warmup_lr),
            min_lr=float(min_lr),
            max_epochs=int(max_epochs),
        )
        for group in optimizer.param_groups
    ]
    return LambdaLR(optimizer, lr_lambda=factors)  # type: ignore[arg-type]
