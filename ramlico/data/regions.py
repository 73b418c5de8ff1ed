"""Ground-truth object geometry of evaluation data, where the data records it.

Region evidence is scored only where the data says where its objects are. Two layouts carry
geometry:

* JSON-lines label files (the generated multi-label set, or your own) whose rows hold
  ``"objects": [{"label": ..., "center": [x, y], "radius": r}, ...]`` in image pixels next to
  ``"image"`` and ``"labels"``;
* generated single-label ImageFolder trees, with ``objects.jsonl`` at their root (one
  ``{"image": "<class>/<file>", "objects": [...]}`` row per image).

:func:`object_geometry` returns the objects of every item of a dataset, in item order, or ``None``
when any item has none (then there is nothing to score).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset, Subset

from ramlico.data.generated import OBJECTS_FILE

__all__ = ["ImageGeometry", "object_geometry"]

JSON_LINES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class ImageGeometry:
    """One image's ``size`` ``(width, height)`` in pixels and its ``objects``."""

    size: tuple[int, int]
    objects: list[dict]


def _jsonl_rows(path: str) -> tuple[dict, ...]:
    """The rows of a JSON-lines file (blank lines as ``{}``), cached by path and mtime."""
    return _read_rows(path, Path(path).stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _read_rows(path: str, mtime_ns: int) -> tuple[dict, ...]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(t) if t.strip() else {} for t in lines)


def _valid(objects: Any, where: str) -> list[dict]:
    if not isinstance(objects, list):
        raise ValueError(f"{where}: 'objects' must be a list, got {type(objects).__name__}")
    for obj in objects:
        if not (isinstance(obj, dict) and {"label", "center", "radius"} <= set(obj)):
            raise ValueError(
                f"{where}: each object needs label, center [x, y] and radius, got {obj!r}"
            )
    return objects


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def _from_records(records: Sequence[Any]) -> list[ImageGeometry] | None:
    out = []
    for r in records:
        source = getattr(r, "source", None) or ""
        path, _, line = source.rpartition(":")
        if not path or not line.isdigit() or Path(path).suffix.lower() not in JSON_LINES:
            return None  # CSV / COCO / NUS-WIDE label files carry no geometry
        if not Path(path).is_file():
            return None
        row = _jsonl_rows(path)[int(line) - 1]
        if "objects" not in row:
            return None
        out.append(ImageGeometry(_size(Path(r.image)), _valid(row["objects"], source)))
    return out


def _from_samples(samples: Sequence[tuple[Any, int]]) -> list[ImageGeometry] | None:
    out = []
    for path, _ in samples:
        path = Path(path)
        root = path.parents[1]
        table = root / OBJECTS_FILE
        if not table.is_file():
            return None
        rows = {row.get("image"): row for row in _jsonl_rows(str(table))}
        row = rows.get(f"{path.parent.name}/{path.name}")
        if row is None:
            return None
        out.append(ImageGeometry(_size(path), _valid(row["objects"], f"{table} ({path.name})")))
    return out


def object_geometry(dataset: Dataset) -> list[ImageGeometry] | None:
    """Per item of ``dataset``, its size and objects ``{label, center, radius}``; ``None`` if
    the data does not record them.

    Understands :class:`~ramlico.data.MultiLabelDataset` (records from JSON-lines files),
    :class:`~ramlico.data.ClassificationDataset` (ImageFolder samples) and ``Subset`` of either.
    """
    if isinstance(dataset, Subset):
        base = object_geometry(dataset.dataset)
        return None if base is None else [base[i] for i in dataset.indices]
    records = getattr(dataset, "records", None)
    if records is not None:
        return _from_records(records)
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return _from_samples(samples)
    return None
