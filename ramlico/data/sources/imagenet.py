"""ImageNet-1k and its test variants, with ramlico's bundled class names (single-label).

============== =================================================================================
``imagenet``   ``root/<wnid>/*.JPEG`` (val after the usual valprep into class folders), or the
               flat ``ILSVRC2012_val_*.JPEG`` with Kaggle's ``LOC_val_solution.csv``; with
               ``train_dir`` / ``test_dir``, ``root/<train_dir>/<wnid>/`` trains (LICO).
``imagenet_v2`` ``root/<0..999>/*.jpeg`` (``imagenetv2-matched-frequency-format-val``): the folder
               name is the ImageNet class index.
``imagenet_sketch`` ``root/<wnid>/*`` or ``root/sketch/<wnid>/*``; 1000 classes.
``imagenet_r`` ``root/<wnid>/*`` (``imagenet-r``); 200 classes, the bundled WNID subset, label =
``imagenet_a`` position in that sorted list (= ascending ImageNet index).
============== =================================================================================

The 1000 names and WNIDs come from :mod:`ramlico.data.imagenet_info` only (never restated); a
``class_names_file`` may still replace them (``<wnid> <name>`` lines or one per line).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from ramlico.data.image_folder import list_images
from ramlico.data.imagenet_info import imagenet_class_names, imagenet_subset_wnids, imagenet_wnids
from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import (
    FolderSplits,
    class_folders,
    lines,
    need,
    wnid_folders,
)
from ramlico.data.sources.base import SingleLabelSource, image_files
from ramlico.data.sources.registry import register_source

__all__ = ["ImageNet", "ImageNetA", "ImageNetR", "ImageNetSketch", "ImageNetV2"]

Samples = list[tuple[Path, int]]


class _ImageNetClasses(SingleLabelSource):
    """The 1000 ImageNet classes, keyed by WNID; test only unless a subclass adds training."""

    splits: ClassVar[tuple[str, ...]] = ("test",)

    def class_names(self) -> list[str]:
        return imagenet_class_names()

    def class_keys(self) -> list[str]:
        return imagenet_wnids()

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        return image_files(self.samples(split), f"{self.name} ({self.root})")

    @abstractmethod
    def samples(self, split: str) -> Samples:
        """``(path, class index)`` pairs of ``split`` (a split the source has)."""


def _flat_val(root: Path, layout: str) -> Samples:
    """Flat ``ILSVRC2012_val_*.JPEG`` files labelled by Kaggle's ``LOC_val_solution.csv``."""
    # Kaggle's download keeps the CSV four levels above ILSVRC/Data/CLS-LOC/val.
    candidates = [d / "LOC_val_solution.csv" for d in (root, *list(root.parents)[:4])]
    csv_path = next((p for p in candidates if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(
            f"imagenet: {root} holds flat val images but LOC_val_solution.csv not found in it or "
            f"its 4 parent folders; expected {layout}"
        )
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    labels = {}
    for ln in lines(csv_path)[1:]:  # header: ImageId,PredictionString
        image_id, prediction = ln.split(",", 1)
        labels[image_id] = index[prediction.split()[0]]
    files = list_images(root)
    unlabelled = [p.name for p in files if p.stem not in labels]
    if unlabelled:
        raise ValueError(
            f"imagenet: {csv_path} has no label for {unlabelled[:5]} ({len(unlabelled)})"
        )
    return [(p, labels[p.stem]) for p in files]


@register_source("imagenet")
class ImageNet(FolderSplits, _ImageNetClasses):
    """ImageNet-1k: the evaluated tree at ``root`` (or ``root/<test_dir>``), WNID folders or the
    flat val layout; ``train_dir`` adds the training tree ``root/<train_dir>/<wnid>/``.

    Args:
        root: the val folder, or with ``train_dir`` / ``test_dir`` the ImageNet folder.
        train_dir, test_dir: sub-folders of the training and evaluated trees.
    """

    LAYOUT = (
        "<root>/<wnid>/<image>.JPEG (val sorted into 1000 WNID class folders), or flat "
        "<root>/ILSVRC2012_val_*.JPEG with LOC_val_solution.csv in <root> or above"
    )

    def samples(self, split: str) -> Samples:
        tree = need(self.dirs[split], "imagenet", self.LAYOUT)
        if split == "test" and not any(p.is_dir() for p in tree.iterdir()) and list_images(tree):
            return _flat_val(tree, self.LAYOUT)
        return wnid_folders(tree, "imagenet", imagenet_wnids(), self.LAYOUT)


@register_source("imagenet_sketch")
class ImageNetSketch(_ImageNetClasses):
    """ImageNet-Sketch: ``root/<wnid>/*`` or ``root/sketch/<wnid>/*``; 1000 classes."""

    def samples(self, split: str) -> Samples:
        root = self.root / "sketch" if (self.root / "sketch").is_dir() else self.root
        layout = "<root>/<wnid>/<image> or <root>/sketch/<wnid>/<image>"
        return wnid_folders(root, "imagenet_sketch", imagenet_wnids(), layout)


@register_source("imagenet_v2")
class ImageNetV2(_ImageNetClasses):
    """ImageNet-V2: ``root/<class index 0..999>/*.jpeg``."""

    def samples(self, split: str) -> Samples:
        layout = "<root>/<class index 0..999>/<image>.jpeg (imagenetv2-*-format-val)"
        folders = class_folders(self.root, "imagenet_v2", layout)
        bad = [f for f in folders if not (f.isdigit() and 0 <= int(f) < 1000)]
        if bad:
            raise ValueError(
                f"imagenet_v2: folders {bad[:5]} in {self.root} are not indices 0..999"
            )
        return [(p, int(f)) for f in folders for p in list_images(self.root / f)]


class _Subset200(_ImageNetClasses):
    """A 200-class WNID subset (ImageNet-R / -A); names from the ImageNet list."""

    def _wnids(self) -> list[str]:
        return imagenet_subset_wnids(self.name)

    def class_keys(self) -> list[str]:
        return self._wnids()

    def class_names(self) -> list[str]:
        names = dict(zip(imagenet_wnids(), imagenet_class_names(), strict=True))
        return [names[w] for w in self._wnids()]

    def samples(self, split: str) -> Samples:
        layout = f"<root>/<wnid>/<image> with the 200 {self.name} WNID folders"
        return wnid_folders(self.root, self.name, self._wnids(), layout)


@register_source("imagenet_r")
class ImageNetR(_Subset200):
    """ImageNet-R (renditions): 200 WNID folders."""


@register_source("imagenet_a")
class ImageNetA(_Subset200):
    """ImageNet-A (natural adversarial examples): 200 WNID folders."""
