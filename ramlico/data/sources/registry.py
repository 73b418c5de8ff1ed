"""The registry of data sources: ``data.source=<name>`` -> a source class, per kind.

``@register_source("name")`` on a :class:`~ramlico.data.sources.base.MultiLabelSource` or
:class:`~ramlico.data.sources.base.SingleLabelSource` subclass adds it; every module of the
``ramlico.data.sources`` package is imported when the package is, so a new data set is one file
there (and a config). A source outside ramlico is named by its import path instead,
``data.source=my_package.my_module.MySource``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ramlico.data.sources.base import DataSource, MultiLabelSource, SingleLabelSource

__all__ = ["build_source", "get_source", "list_sources", "register_source"]

KINDS: dict[str, type[DataSource]] = {
    "multilabel": MultiLabelSource,
    "singlelabel": SingleLabelSource,
}
_REGISTRY: dict[str, dict[str, type[DataSource]]] = {kind: {} for kind in KINDS}
S = TypeVar("S", bound=type[DataSource])


def _kind_of(cls: type) -> str:
    for kind, base in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(
        f"{cls!r} is not a data source: subclass ramlico.data.sources.MultiLabelSource or "
        "SingleLabelSource"
    )


def register_source(name: str) -> Callable[[S], S]:
    """Class decorator: register a source under ``name`` for its kind (from its base class).

    Raises:
        ValueError: ``name`` is taken by another class of the same kind.
    """

    def add(cls: S) -> S:
        kind = _kind_of(cls)
        known = _REGISTRY[kind].get(name)
        if known is not None and known is not cls:
            raise ValueError(
                f"data source name {name!r} ({kind}) is taken by {known.__module__}."
                f"{known.__qualname__}; choose another name"
            )
        cls.name = name
        _REGISTRY[kind][name] = cls
        return cls

    return add


def list_sources(kind: str) -> list[str]:
    """Registered names of ``kind`` (``"multilabel"`` or ``"singlelabel"``), sorted."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return sorted(_REGISTRY[kind])


def _import_path(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"data source {path!r} cannot be imported: {err}") from err


def get_source(name: str, kind: str) -> type[DataSource]:
    """The source class of ``name`` (a registered name or an import path ``pkg.mod.Class``).

    Raises:
        ValueError: an unknown name (the available ones are listed) or a class of the other kind.
    """
    if name in _REGISTRY.get(kind, {}):
        return _REGISTRY[kind][name]
    if "." not in name:
        other = [k for k in KINDS if k != kind and name in _REGISTRY[k]]
        hint = f" ('{name}' is a {other[0]} source: use the other data config)" if other else ""
        raise ValueError(
            f"unknown {kind} data source {name!r}; available: {list_sources(kind)}{hint}, or an "
            "import path my_package.module.MySource"
        )
    cls = _import_path(name)
    if _kind_of(cls) != kind:
        raise ValueError(f"data source {name!r} is not a {kind} source")
    if not cls.name:
        cls.name = name
    return cls


def build_source(name: str, kind: str, root: str | Any, **options: Any) -> DataSource:
    """``get_source(name, kind)(root, **options)``; an option the source does not take is named
    with the ones it does (options set to ``None`` that it does not take are left out: a config
    shared by several sources lists them as unset).

    Raises:
        TypeError: unknown options.
    """
    cls = get_source(name, kind)
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted(n for n in params if n not in ("self", "root"))
    # a key a shared config lists as null (unset) is not an option of this source
    options = {k: v for k, v in options.items() if k in allowed or v is not None}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"data source '{cls.name}': unknown option(s) {unknown}; it takes {allowed} (plus the "
            "DataModule's own keys)"
        )
    return cls(root, **options)
