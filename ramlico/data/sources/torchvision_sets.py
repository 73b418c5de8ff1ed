"""CIFAR-10, CIFAR-100 and SVHN through torchvision (single-label; ``data=cifar10`` ...).

The archives are read from ``root`` (``download=true`` fetches them once, with internet; offline,
extract the official archives there). Class names come from the data set, in label order:
CIFAR-10 "airplane, automobile, bird, ...", SVHN "zero" ... "nine", ``_`` replaced by a space.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset

from ramlico.data.labelled_images import DatasetImages
from ramlico.data.sources.base import SingleLabelSource
from ramlico.data.sources.registry import register_source

__all__ = ["CIFAR10", "CIFAR100", "SVHN"]

SVHN_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class _Torchvision(SingleLabelSource):
    """Shared loading: the torchvision data set per split, built once, without a transform."""

    def __init__(self, root: str | Path, download: bool = False) -> None:
        super().__init__(root)
        self.download = download
        self._sets: dict[str, DatasetImages] = {}

    @abstractmethod
    def _build(self, split: str) -> tuple[Any, list[int]]:
        """The torchvision data set of ``split`` and its labels."""

    def images(self, split: str) -> DatasetImages:
        self.require_split(split)
        if split not in self._sets:
            try:
                dataset, labels = self._build(split)
            except RuntimeError as exc:
                raise RuntimeError(
                    f"{self.name} not found under data.root={self.root}: {exc}. Pass "
                    "data.download=true (needs internet) or extract the official archives there."
                ) from exc
            self._sets[split] = DatasetImages(dataset, labels)
        return self._sets[split]

    def cache_key(self, split: str) -> str:
        return f"{self.name}:{self.root.resolve()}:{split}"


class _CIFAR(_Torchvision):
    def _dataset_class(self) -> Any:
        from torchvision import datasets

        return datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100

    def _build(self, split: str) -> tuple[Any, list[int]]:
        cls = self._dataset_class()
        data = cls(str(self.root), train=split == "train", download=self.download)
        self._classes = list(data.classes)
        return data, list(data.targets)

    def class_names(self) -> list[str]:
        if not hasattr(self, "_classes"):
            self.images("test")
        return [n.replace("_", " ") for n in self._classes]


@register_source("cifar10")
class CIFAR10(_CIFAR):
    """CIFAR-10 under ``root`` (torchvision layout)."""

    stats = ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255))


@register_source("cifar100")
class CIFAR100(_CIFAR):
    """CIFAR-100 under ``root`` (torchvision layout)."""

    stats = ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255))


@register_source("svhn")
class SVHN(_Torchvision):
    """SVHN under ``root``; ``svhn_extra=true`` adds the 531,131 "extra" images to training
    (LICO's "full" SVHN)."""

    stats = ((0.4380, 0.4440, 0.4730), (0.1751, 0.1771, 0.1744))

    def __init__(self, root: str | Path, download: bool = False, svhn_extra: bool = False) -> None:
        super().__init__(root, download)
        self.svhn_extra = svhn_extra

    def _build(self, split: str) -> tuple[Any, list[int]]:
        from torchvision import datasets

        root, dl = str(self.root), self.download
        data = datasets.SVHN(root, split="train" if split == "train" else "test", download=dl)
        labels = data.labels.tolist()
        if split == "train" and self.svhn_extra:
            extra = datasets.SVHN(root, split="extra", download=dl)
            labels += extra.labels.tolist()
            data = ConcatDataset([data, extra])
        return data, labels

    def class_names(self) -> list[str]:
        return list(SVHN_NAMES)
