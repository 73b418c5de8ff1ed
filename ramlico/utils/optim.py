"""One optimiser object over several torch optimisers (e.g. AdamW for adapters + SGD for prompts).

Lightning's automatic optimisation, gradient clipping, accumulation, AMP scalers and its step
counter (``trainer.global_step``) all expect one optimiser per training step. RAM trains two
parameter sets with two algorithms; :class:`CombinedOptimizer` presents them as one:

* ``param_groups`` is the concatenation of the inner optimisers' groups (the *same* dicts, so
  changing ``group["lr"]`` on the wrapper changes the inner optimiser);
* ``step`` evaluates the closure once, then steps every inner optimiser;
* ``state`` is a read/write view routing each parameter to its owner's state;
* ``state_dict`` nests the inner state dicts (tensors and numbers: ``weights_only`` loads).

:func:`check_factory` checks a Hydra ``_partial_`` optimiser/scheduler factory when the model is
built, so a misspelt option fails before training with the options that exist.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

import torch

__all__ = ["CombinedOptimizer", "accepts", "check_factory"]


def _target_and_options(factory: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(factory, functools.partial):
        return factory.func, dict(factory.keywords)
    return factory, {}


def accepts(factory: Any, keyword: str) -> bool:
    """Whether ``factory`` can be called with ``keyword`` (and does not fix it already).

    Example: LICO passes ``total_steps`` to a scheduler factory only if it takes one.
    """
    target, options = _target_and_options(factory)
    if keyword in options:
        return False
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def check_factory(name: str, factory: Any, bound: Sequence[str] = ()) -> None:
    """Check a ``_partial_`` factory before use: callable, known options, ``bound`` accepted.

    Args:
        name: config key for messages (``"model.optimizer.prompts"``).
        factory: the factory (``functools.partial`` from Hydra ``_partial_: true``, a class or a
            function).
        bound: keywords the caller passes later (``"params"``, ``"optimizer"``).

    Raises:
        TypeError: not callable, an option its target does not take (the allowed ones are
            listed), or a target that cannot take the ``bound`` keywords.
    """
    if not callable(factory):
        raise TypeError(
            f"{name} must be a factory (a _target_ with _partial_: true), got "
            f"{type(factory).__name__}"
        )
    target, options = _target_and_options(factory)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no introspectable signature (C callables): nothing to check
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    where = getattr(target, "__qualname__", repr(target))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        options_allowed = sorted(set(allowed) - set(bound))
        raise TypeError(f"{name}: {where} has no option(s) {unknown}; allowed: {options_allowed}")
    missing = [b for b in bound if b not in allowed]
    if missing:
        raise TypeError(f"{name}: {where} cannot take {missing}; is it the right _target_?")


class _StateView(MutableMapping):
    """``state[p]`` routed to the inner optimiser that owns ``p`` (reads never create entries
    in another optimiser's state, unlike a ChainMap over defaultdicts)."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self._optimizers = optimizers
        self._owner = {
            id(p): opt for opt in optimizers for g in opt.param_groups for p in g["params"]
        }

    def _state_of(self, key: Any) -> MutableMapping:
        opt = self._owner.get(id(key))
        if opt is None:
            raise KeyError(key)
        return opt.state

    def __getitem__(self, key: Any) -> Any:
        return self._state_of(key)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._state_of(key)[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._state_of(key)[key]

    def __iter__(self) -> Iterator[Any]:
        for opt in self._optimizers:
            yield from opt.state

    def __len__(self) -> int:
        return sum(len(opt.state) for opt in self._optimizers)


class CombinedOptimizer(torch.optim.Optimizer):
    """Several optimisers stepped together as one.

    Args:
        optimizers: the inner optimisers; their parameter sets must be disjoint.

    Raises:
        ValueError: no optimiser, or a parameter owned by two of them.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if not optimizers:
            raise ValueError("CombinedOptimizer needs at least one optimiser")
        params = [p for opt in optimizers for g in opt.param_groups for p in g["params"]]
        if len({id(p) for p in params}) != len(params):
            raise ValueError("CombinedOptimizer: a parameter belongs to more than one optimiser")
        self.optimizers = list(optimizers)
        super().__init__(params, {})
        self.param_groups = [g for opt in self.optimizers for g in opt.param_groups]
        self.state = _StateView(self.optimizers)  # type: ignore[assignment]  # a live view

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        inner = state_dict.get("optimizers")
        if inner is None or len(inner) != len(self.optimizers):
            raise ValueError(
                f"optimizer state holds {0 if inner is None else len(inner)} inner optimisers, "
                f"this CombinedOptimizer has {len(self.optimizers)} (was the model config changed?)"
            )
        for opt, sd in zip(self.optimizers, inner, strict=True):
            opt.load_state_dict(sd)
        self.param_groups = [g for opt in self.optimizers for g in opt.param_groups]
        self.state = _StateView(self.optimizers)  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(type(o).__name__ for o in self.optimizers)
        return f"CombinedOptimizer({inner})"
