"""Evaluation under DDP: every image once, and per-image results gathered in dataset order.

* :func:`eval_sampler`: an unrepeated distributed sampler for evaluation loaders. Lightning's
  default ``DistributedSampler`` pads the dataset to a multiple of the world size with repeated
  images, which biases metrics and duplicates predictions; this one gives every image to exactly
  one rank (ranks then hold different numbers of images).
* :func:`all_gather_rows`: concatenate per-rank tensors with different first dimensions.
* :func:`all_gather_objects`: the same for picklable Python objects.

Without an initialised process group (one process) all of them are the identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset

__all__ = ["all_gather_objects", "all_gather_rows", "eval_sampler", "world_size"]

Tensor = torch.Tensor


def world_size() -> int:
    """Number of processes of the initialised default group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def eval_sampler(dataset: Dataset) -> UnrepeatedDistributedSampler | None:
    """Under DDP, a sampler that gives each image to exactly one rank (in order); else ``None``.

    It subclasses ``DistributedSampler``, so Lightning keeps it instead of inserting its padding
    sampler.
    """
    if world_size() <= 1:
        return None
    return UnrepeatedDistributedSampler(dataset, shuffle=False)


def all_gather_rows(tensor: Tensor, device: torch.device | str | None = None) -> Tensor:
    """``(n_r, ...)`` on each rank ``r`` -> ``(sum_r n_r, ...)`` on every rank, rank order.

    The rows are padded to the largest ``n_r`` for the collective and trimmed afterwards, so the
    ranks may hold different numbers of rows (:func:`eval_sampler`). ``device``: where the
    collective runs (the rank's accelerator under nccl, e.g. ``module.device``); the result comes
    back on the input's device.
    """
    if world_size() <= 1:
        return tensor
    home = tensor.device
    tensor = tensor.to(device) if device is not None else tensor
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)]).to(home)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in one process."""
    if world_size() <= 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
