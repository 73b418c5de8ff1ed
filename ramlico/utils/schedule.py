"""Epoch-wise learning-rate schedules: RAM's warm-up + cosine through timm's ``CosineLRScheduler``.

timm's cosine scheduler with a linear warm-up computes RAM's formula (:func:`warmup_cosine_lr`)
for every parameter group from its own base lr (``t_initial = max_epochs``, ``lr_min = min_lr``,
``warmup_t = warmup_epochs``, ``warmup_lr_init = warmup_lr``, ``warmup_prefix=False``: the cosine
runs on the absolute epoch, as in RAM). Two differences from torch schedulers:

* timm schedulers are stateless and take the epoch number: ``step(epoch)`` sets the lr of epoch
  ``epoch`` (the number of finished epochs, timm's convention). :class:`ramlico.methods.base.
  RamlicoModule.lr_scheduler_step` does this for Lightning, which steps only torch schedulers
  by itself.
* RAM numbers its epochs from 1 (``t = 1`` for the first one), timm from 0; the scheduler here
  reads timm's epoch ``e`` as RAM's ``t = e + 1``.

Their ``state_dict`` (numbers and lists: ``weights_only`` loads) travels in Lightning's
checkpoints; the lr of the running epoch is in the optimiser's state, so a resumed run (also from
a mid-epoch checkpoint) continues with exactly the uninterrupted run's rates.
"""

from __future__ import annotations

import math

import torch
from timm.scheduler import CosineLRScheduler

__all__ = ["WarmupCosineScheduler", "warmup_cosine_lr", "warmup_cosine_scheduler"]


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
        lr(t) = min_lr + (base_lr - min_lr) (1 + cos(pi t / max_epochs)) / 2    t < max_epochs
        lr(t) = min_lr                                                          otherwise

    (one cosine cycle, as timm's scheduler that RAM's reference trains with: after ``max_epochs``
    the rate stays at ``min_lr``).

    RAM steps it at the start of epochs 1..6 with ``max_epochs = 60`` (so the cosine is cut early):
    for ``base_lr = 5e-6`` the epochs get 2.0e-6, 3.5e-6, 4.970e-6, 4.946e-6, 4.917e-6, 4.880e-6.
    """
    if epoch < warmup_epochs:
        return warmup_lr + epoch * ((base_lr - warmup_lr) / warmup_epochs)
    if epoch >= max_epochs:
        return min_lr
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / max_epochs))


class WarmupCosineScheduler(CosineLRScheduler):
    """timm's ``CosineLRScheduler`` counting epochs as RAM does: timm epoch ``e`` is RAM's
    ``t = e + 1`` (so the first epoch, ``e = 0``, runs at :func:`warmup_cosine_lr` of ``t = 1``).

    Build it with :func:`warmup_cosine_scheduler`; ``step(epoch)`` sets the lr of 0-based
    ``epoch`` for every group.
    """

    def _get_lr(self, t: int) -> list[float]:
        return super()._get_lr(t + 1)


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_epochs: int = 3,
    warmup_lr: float = 5e-7,
    min_lr: float = 1e-7,
    max_epochs: int = 60,
) -> WarmupCosineScheduler:
    """RAM's schedule for every param group, stepped once per epoch (timm's cosine scheduler).

    Every group warms up linearly from the same absolute ``warmup_lr`` and decays to the same
    ``min_lr`` (:func:`warmup_cosine_lr` of the group's base lr, which timm reads from
    ``initial_lr`` or ``lr``). On return the groups hold the lr of the first epoch.

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
    scheduler = WarmupCosineScheduler(
        optimizer,
        t_initial=int(max_epochs),
        lr_min=float(min_lr),
        warmup_t=int(warmup_epochs),
        warmup_lr_init=float(warmup_lr),
        warmup_prefix=False,
        t_in_epochs=True,
    )
    scheduler.step(0)  # timm's constructor leaves warmup_lr in the groups; RAM's t = 1 is epoch 0
    return scheduler
