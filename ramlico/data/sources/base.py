"""What a data source is: a small class that knows one data set's files, labels and splits.

Two kinds, one per DataModule:

* :class:`MultiLabelSource` (``ramlico.data.MultiLabelDataModule``): a :class:`LabelSpace`
  (seen / unseen labels) and the :class:`Record` list (image + label names) of the ``"train"``
  and ``"test"`` splits.
* :class:`SingleLabelSource` (``ramlico.data.ClassificationDataModule``): class names in label
  order and :class:`LabelledImages` of its ``"train"`` / ``"test"`` splits.

A source only reads; the DataModule checks the data, builds the datasets, transforms and loaders.
Its constructor takes ``root`` (the extracted data set folder) and the source's own options,
which come from the data config next to the DataModule's (``data.instances_train=...``).
Register it with :func:`ramlico.data.sources.register_source`; see ``docs/adding_a_method.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ramlico.data.labelled_images import ImageFiles, LabelledImages
from ramlico.data.labels import LabelSpace
from ramlico.data.records import Record

__all__ = ["DataSource", "MultiLabelSource", "SingleLabelSource"]


class DataSource:
    """Common part of both kinds.

    Args:
        root: the data set folder (for generated data, the cache folder).

    Attributes:
        name: the registered name (``data.source=<name>``), set by ``register_source``.
        kind: ``"multilabel"`` or ``"singlelabel"``.
        splits: the splits the source has, of ``("train", "test")``.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def prepare(self) -> None:
        """Write data that is generated locally (called once, on rank 0); default: nothing."""

    def require_split(self, split: str) -> None:
        """Raise if the source has no ``split`` (named, with the ones it has)."""
        if split not in self.splits:
            raise ValueError(
                f"data source '{self.name}' has no {split!r} split (it has {list(self.splits)}); "
                + (
                    "it is an evaluation set: use evaluate.py, or a source with training data"
                    if split == "train"
                    else "choose another source"
                )
            )

    def cache_key(self, split: str) -> str:
        """What ``split`` is read from: the key of the cached image check and of messages."""
        return f"{self.name}:{self.root.resolve()}:{split}"

    def describe(self) -> str:
        return f"{self.name} ({self.root})"


class MultiLabelSource(DataSource, ABC):
    """A multi-label data set: label space + records of the train and test splits.

    Attributes:
        label_files: the splits are user-written label files (rows with an empty label cell are
            then errors unless ``allow_empty_labels``; fixed data sets are read as they are).
    """

    kind = "multilabel"
    label_files: ClassVar[bool] = False

    @abstractmethod
    def label_space(self) -> LabelSpace:
        """Seen (trained) and unseen (zero-shot) labels."""

    @abstractmethod
    def records(self, split: str) -> list[Record]:
        """Images and their positive label names of ``"train"`` or ``"test"`` (unchecked)."""


class SingleLabelSource(DataSource, ABC):
    """A single-label data set: class names + labelled images of the train and test splits.

    Attributes:
        stats: ``(mean, std)`` of the data set, the default normalisation (``None``: ImageNet's).
    """

    kind = "singlelabel"
    stats: ClassVar[tuple[tuple[float, ...], tuple[float, ...]] | None] = None

    @abstractmethod
    def class_names(self) -> list[str]:
        """Readable class names in label order (what the text encoders read)."""

    def class_keys(self) -> list[str]:
        """What a ``class_names_file`` may key its lines by (folder names, WNIDs); default the
        class names."""
        return self.class_names()

    @abstractmethod
    def images(self, split: str) -> LabelledImages:
        """The images and class indices of ``"train"`` or ``"test"``."""


def image_files(samples: Sequence[tuple[Path, int]], what: str) -> ImageFiles:
    """:class:`ImageFiles` of ``samples``; no image at all is an error naming ``what``."""
    if not samples:
        raise ValueError(f"{what}: no images found")
    return ImageFiles(samples)
