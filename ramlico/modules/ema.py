"""Exponential moving average (EMA) of a module's trainable tensors, kept as buffers.

``shadow <- decay * shadow + (1 - decay) * live`` after every optimiser step, for the trainable
parameters and the floating-point buffers (BatchNorm statistics) of the tracked submodules. The
shadows are ordinary buffers of :class:`EMAShadow`, so they travel in (lean) checkpoints and a
resumed run continues the same average. :meth:`swapped` evaluates with the averaged weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["EMAShadow"]


class EMAShadow(nn.Module):
    """EMA shadows of the trainable tensors of ``owner`` (frozen tensors are skipped).

    Args:
        owner: the module whose trainable parameters (and the float buffers of the submodules that
            hold them) are averaged; it is *not* registered as a child.
        decay: EMA decay (RAM's reference: 0.9997).
    """

    def __init__(self, owner: nn.Module, decay: float = 0.9997) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self._names = self._tracked(owner)
        for name, tensor in self._live(owner):
            self.register_buffer(name.replace(".", "__"), tensor.detach().clone())

    @staticmethod
    def _tracked(owner: nn.Module) -> list[str]:
        params = [n for n, p in owner.named_parameters() if p.requires_grad]
        holders = {n.rsplit(".", 1)[0] for n in params if "." in n}
        buffers = [
            n for n, b in owner.named_buffers()
            if b.is_floating_point() and "." in n and n.rsplit(".", 1)[0] in holders
        ]  # fmt: skip
        return params + buffers

    def _live(self, owner: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
        tensors = dict(owner.named_parameters())
        tensors.update(dict(owner.named_buffers()))
        for name in self._names:
            yield name, tensors[name]

    @torch.no_grad()
    def reset(self, owner: nn.Module) -> None:
        """Shadows <- live tensors."""
        for name, live in self._live(owner):
            getattr(self, name.replace(".", "__")).copy_(live)

    @torch.no_grad()
    def update(self, owner: nn.Module) -> None:
        """One EMA step."""
        for name, live in self._live(owner):
            getattr(self, name.replace(".", "__")).lerp_(live.detach(), 1.0 - self.decay)

    @contextmanager
    def swapped(self, owner: nn.Module) -> Iterator[None]:
        """Inside the block ``owner`` holds the averaged tensors; the live ones come back after."""
        self._swap(owner)
        try:
            yield
        finally:
            self._swap(owner)

    @torch.no_grad()
    def _swap(self, owner: nn.Module) -> None:
        for name, live in self._live(owner):
            shadow = getattr(self, name.replace(".", "__"))
            tmp = live.detach().clone()
            live.copy_(shadow)
            shadow.copy_(tmp)
