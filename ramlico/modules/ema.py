"""Exponential moving average (EMA) of a module's trainable tensors.

``shadow <- decay * shadow + (1 - decay) * live`` after every optimiser step, for the trainable
parameters and the floating-point buffers (BatchNorm statistics) of the submodules that hold them;
frozen tensors (a CLIP backbone) are not copied. :meth:`EMAShadow.swapped` evaluates with the
averaged tensors and puts the live ones back afterwards; the shadow keeps the average throughout.
The callback :class:`ramlico.callbacks.EMA` drives it from the Trainer's hooks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["EMAShadow", "ema_tracked_names"]

Tensor = torch.Tensor


def ema_tracked_names(owner: nn.Module) -> list[str]:
    """Names of the tensors an EMA of ``owner`` tracks: trainable parameters, then the floating
    buffers of the submodules that hold a trainable parameter (e.g. BatchNorm running stats)."""
    params = [n for n, p in owner.named_parameters() if p.requires_grad]
    holders = {n.rsplit(".", 1)[0] for n in params if "." in n}
    buffers = [
        n for n, b in owner.named_buffers()
        if b.is_floating_point() and "." in n and n.rsplit(".", 1)[0] in holders
    ]  # fmt: skip
    return params + buffers


class EMAShadow:
    """EMA shadows of the trainable tensors of ``owner`` (not registered in ``owner``).

    Args:
        owner: the module whose tracked tensors (:func:`ema_tracked_names`) are averaged; the
            shadows start as copies of them, on their devices.
        decay: EMA decay in ``[0, 1)`` (RAM's reference: 0.9997).

    Raises:
        ValueError: ``decay`` outside ``[0, 1)``, or ``owner`` has no trainable tensor.
    """

    def __init__(self, owner: nn.Module, decay: float = 0.9997) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}; e.g. 0.9997 (RAM)")
        self.decay = float(decay)
        self.names = ema_tracked_names(owner)
        if not self.names:
            raise ValueError(f"EMA: {type(owner).__name__} has no trainable tensor to average")
        self.average: dict[str, Tensor] = {
            name: live.detach().clone() for name, live in self._live(owner)
        }
        self._backup: dict[str, Tensor] | None = None

    def _live(self, owner: nn.Module) -> Iterator[tuple[str, Tensor]]:
        tensors: dict[str, Tensor] = dict(owner.named_parameters())
        tensors.update(dict(owner.named_buffers()))
        missing = [n for n in self.names if n not in tensors]
        if missing:
            raise KeyError(f"EMA: {type(owner).__name__} lacks the tracked tensors {missing[:5]}")
        for name in self.names:
            yield name, tensors[name]

    @torch.no_grad()
    def reset(self, owner: nn.Module) -> None:
        """Shadows <- live tensors."""
        for name, live in self._live(owner):
            self.average[name].copy_(live)

    @torch.no_grad()
    def update(self, owner: nn.Module) -> None:
        """One EMA step: ``shadow <- shadow + (1 - decay) (live - shadow)``."""
        for name, live in self._live(owner):
            self.average[name].lerp_(live.detach(), 1.0 - self.decay)

    @torch.no_grad()
    def load(self, average: Mapping[str, Tensor]) -> None:
        """Shadows <- ``average`` (e.g. from a checkpoint); names and shapes must match."""
        if set(average) != set(self.names):
            missing = sorted(set(self.names) - set(average))[:5]
            unknown = sorted(set(average) - set(self.names))[:5]
            raise KeyError(
                f"EMA state does not fit this model: missing {missing}, unknown {unknown} (was it "
                "saved by another model configuration?)"
            )
        for name in self.names:
            self.average[name].copy_(average[name])

    @property
    def active(self) -> bool:
        """True while the owner holds the averaged tensors (inside :meth:`swap_in`)."""
        return self._backup is not None

    @torch.no_grad()
    def swap_in(self, owner: nn.Module) -> None:
        """``owner`` <- averaged tensors; the live ones are kept for :meth:`swap_out`."""
        if self._backup is not None:
            return
        self._backup = {}
        for name, live in self._live(owner):
            self._backup[name] = live.detach().clone()
            live.copy_(self.average[name])

    @torch.no_grad()
    def swap_out(self, owner: nn.Module) -> None:
        """``owner`` <- the live tensors kept by :meth:`swap_in` (no-op when not swapped in)."""
        if self._backup is None:
            return
        for name, live in self._live(owner):
            live.copy_(self._backup[name])
        self._backup = None

    @contextmanager
    def swapped(self, owner: nn.Module) -> Iterator[None]:
        """Inside the block ``owner`` holds the averaged tensors; the live ones come back after."""
        self.swap_in(owner)
        try:
            yield
        finally:
            self.swap_out(owner)
