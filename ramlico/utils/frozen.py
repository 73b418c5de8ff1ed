"""``FrozenModule``: the explicit mark of a module whose weights are fixed.

A frozen module (a pretrained CLIP or timm backbone, the text tower the prompt learners read)
takes no gradient, stays in eval mode whatever ``train()`` is asked (dropout and BatchNorm
statistics never change) and is rebuilt from its config rather than stored:
:class:`ramlico.methods.base.RamlicoModule` leaves it out of checkpoints. Subclass
:class:`FrozenModule` (instead of ``nn.Module``) and call :meth:`FrozenModule.freeze`;
:func:`frozen_submodules` finds the frozen parts of a model and refuses a frozen module with a
trainable parameter (its weights would be lost from the checkpoint).
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn

__all__ = ["FrozenModule", "frozen_submodules"]

M = TypeVar("M", bound="FrozenModule")


class FrozenModule(nn.Module):
    """An ``nn.Module`` that can be frozen: no gradients, always eval mode, not checkpointed."""

    _frozen: bool = False

    def freeze(self: M) -> M:
        """Freeze every parameter and switch to eval mode for good; returns ``self``."""
        self.requires_grad_(False)
        self._frozen = True
        self.eval()
        return self

    @property
    def is_frozen(self) -> bool:
        """Whether :meth:`freeze` was called."""
        return self._frozen

    def train(self: M, mode: bool = True) -> M:
        """Train mode as usual, except that a frozen module stays in eval mode."""
        return super().train(mode and not self._frozen)


def frozen_submodules(model: nn.Module) -> dict[str, FrozenModule]:
    """``{name: module}`` of the outermost frozen submodules of ``model``.

    Raises:
        ValueError: a frozen submodule has a parameter that requires a gradient (named).
    """
    found: dict[str, FrozenModule] = {}
    for name, module in model.named_modules():
        if not name or not isinstance(module, FrozenModule) or not module.is_frozen:
            continue
        if any(name.startswith(f"{outer}.") for outer in found):
            continue
        trainable = [n for n, p in module.named_parameters() if p.requires_grad]
        if trainable:
            raise ValueError(
                f"{name} is frozen (left out of checkpoints) but {name}.{trainable[0]} requires "
                "a gradient; build it unfrozen (freeze=false) to train it"
            )
        found[name] = module
    return found
