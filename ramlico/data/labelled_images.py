"""Single-label images as data sources give them, and the dataset that transforms them.

A single-label source hands over :class:`LabelledImages`: ``len``, ``images[i] -> (image as
stored, class index)``, the ``labels`` and, for files on disk, their ``paths``. Two kinds exist:
:class:`ImageFiles` (``(path, class index)`` pairs, decoded when read) and :class:`DatasetImages`
(a dataset that already yields ``(PIL image, class index)``, e.g. torchvision's CIFAR).

:class:`ClassificationDataset` applies the transform: items are ``(transform(image), label)`` or,
with ``with_index``, ``(..., dataset index)`` (evaluation: predictions and LaZSL's crop seeds are
keyed by it). The image is passed as stored; the transform owns every pixel operation, including
the conversion to RGB. A transform with ``uses_index = True`` is called ``transform(image, index)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ramlico.data.image_folder import decode_image

__all__ = [
    "ClassificationDataset",
    "DatasetImages",
    "ImageFiles",
    "LabelledImages",
    "collate_samples",
]

Samples = list[tuple[Path, int]]


class LabelledImages(ABC):
    """Images with one class index each (what a single-label source returns for a split)."""

    @property
    @abstractmethod
    def labels(self) -> list[int]:
        """Class index of every image, in order."""

    @property
    def paths(self) -> list[Path] | None:
        """The image files, in order; ``None`` when the images are not files (array data)."""
        return None

    @abstractmethod
    def read(self, index: int) -> Image.Image:
        """Image ``index``, decoded as stored."""

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return self.read(index), self.labels[index]


class ImageFiles(LabelledImages):
    """``(path, class index)`` pairs; images are decoded when read (unreadable ones raise with
    their path)."""

    def __init__(self, samples: Sequence[tuple[Path, int]]) -> None:
        self.samples: Samples = [(Path(p), int(y)) for p, y in samples]

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.samples]

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self.samples]

    def read(self, index: int) -> Image.Image:
        return decode_image(self.samples[index][0])

    def __len__(self) -> int:
        return len(self.samples)


class DatasetImages(LabelledImages):
    """A dataset yielding ``(PIL image, class index)`` (torchvision's CIFAR, SVHN, ...).

    Args:
        dataset: the dataset (built without a transform).
        labels: its class indices, in order (read from its label array, not by loading images).
    """

    def __init__(self, dataset: Dataset, labels: Sequence[int]) -> None:
        if len(dataset) != len(labels):  # type: ignore[arg-type]
            raise ValueError(f"{len(labels)} labels for {len(dataset)} images")  # type: ignore[arg-type]
        self.dataset = dataset
        self._labels = [int(y) for y in labels]

    @property
    def labels(self) -> list[int]:
        return self._labels

    def read(self, index: int) -> Image.Image:
        return self.dataset[index][0]


class ClassificationDataset(Dataset[tuple[Any, ...]]):
    """``(transform(image), class index)`` or, with ``with_index``, ``(..., dataset index)``.

    Args:
        images: the split's :class:`LabelledImages` (a list of ``(path, class index)`` pairs is
            taken as :class:`ImageFiles`).
        transform: image as stored -> model input; called ``transform(image, index)`` when it
            has ``uses_index = True``.
        with_index: also return the dataset index (evaluation).
    """

    def __init__(
        self,
        images: LabelledImages | Sequence[tuple[Path, int]],
        transform: Callable[..., Any],
        with_index: bool = False,
    ) -> None:
        self.images = images if isinstance(images, LabelledImages) else ImageFiles(images)
        self.transform = transform
        self.with_index = with_index

    @property
    def samples(self) -> Samples | None:
        """``(path, class index)`` pairs of file-based images, else ``None``."""
        paths = self.images.paths
        return None if paths is None else list(zip(paths, self.images.labels, strict=True))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> tuple[Any, ...]:
        image, label = self.images[idx]
        if getattr(self.transform, "uses_index", False):
            x = self.transform(image, idx)
        else:
            x = self.transform(image)
        return (x, label, idx) if self.with_index else (x, label)


def _collate(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # NamedTuple: field by field
        return type(first)(*(_collate(list(v)) for v in zip(*values, strict=True)))
    if isinstance(first, torch.Tensor):
        if all(v.shape == first.shape for v in values):
            return torch.stack(values)
        return list(values)  # e.g. full-resolution originals of different sizes
    return torch.as_tensor(values)


def collate_samples(batch: list[tuple[Any, int, int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Batch ``(x, label, index)`` samples: tensors are stacked when their shapes agree and kept
    as a list otherwise; NamedTuples of tensors are collated field by field."""
    xs, labels, index = zip(*batch, strict=True)
    return _collate(list(xs)), torch.as_tensor(labels), torch.as_tensor(index)
