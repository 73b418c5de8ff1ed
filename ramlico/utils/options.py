"""Base of the option dataclasses: a misspelt option fails naming the allowed ones.

Option blocks in the configs (``model.kcot``, ``model.kcot.solver``, ...) are dataclasses built by
Hydra's ``_target_``. A plain dataclass rejects an unknown keyword with ``unexpected keyword
argument 'epsilon'``; subclasses of :class:`Options` say which keywords exist instead::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo(Options):
    ...     reg: float = 0.1
    >>> Demo(rge=0.2)
    Traceback (most recent call last):
    ...
    TypeError: Demo: unknown option(s) ['rge']; allowed: ['reg']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["Options"]

T = TypeVar("T", bound="Options")


class Options:
    """Mixin for option dataclasses: unknown keywords raise ``TypeError`` listing the fields."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        allowed: list[str] = []
        if dataclasses.is_dataclass(cls):
            allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(
                f"{cls.__name__}: unknown option(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return super().__new__(cls)

    @classmethod
    def build(cls: type[T], value: T | Mapping[str, Any] | None, default: T | None = None) -> T:
        """``value`` as an instance: itself, built from a mapping, or the defaults (``None``).

        With ``default`` (a method's preset), ``None`` means ``default`` and a mapping changes
        only the fields it names: ``build({"tol": None}, PRESET) == replace(PRESET, tol=None)``.
        """
        if value is None:
            return cls() if default is None else default
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            if default is not None:
                # T is a dataclass: Options is the mixin of option dataclasses only
                return dataclasses.replace(default, **dict(value))  # type: ignore[type-var]
            return cls(**dict(value))
        raise TypeError(
            f"expected {cls.__name__} or a mapping of its options, got {type(value).__name__}"
        )
