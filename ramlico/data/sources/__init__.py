"""Data sources: one small class per data set, found by name (``data.source=<name>``).

Multi-label (``MultiLabelDataModule``): ``generated``, ``coco``, ``nus_wide``, ``custom``.
Single-label (``ClassificationDataModule``): ``generated``, ``folder``, ``cifar10``, ``cifar100``,
``svhn``, ``imagenet``, ``imagenet_v2``, ``imagenet_sketch``, ``imagenet_r``, ``imagenet_a``,
``cub``, ``pets``, ``food101``, ``places365``. ``list_sources(kind)`` lists them.

Every module of this package is imported here, so adding a data set is one file in this folder
(a ``@register_source`` class) plus one config in ``configs/data/``.
"""

import importlib
import pkgutil

from ramlico.data.sources.base import DataSource, MultiLabelSource, SingleLabelSource
from ramlico.data.sources.registry import build_source, get_source, list_sources, register_source

__all__ = [
    "DataSource",
    "MultiLabelSource",
    "SingleLabelSource",
    "build_source",
    "get_source",
    "list_sources",
    "register_source",
]

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_info.name}")
