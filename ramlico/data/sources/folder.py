"""Any ImageFolder tree: ``root/<class folder>/<image>`` (single-label; ``data=image_folder``)."""

from __future__ import annotations

from ramlico.data.image_folder import read_image_folder
from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import FolderSplits
from ramlico.data.sources.base import SingleLabelSource
from ramlico.data.sources.registry import register_source

__all__ = ["ImageFolder"]


@register_source("folder")
class ImageFolder(FolderSplits, SingleLabelSource):
    """Class folders sorted (label order); names are the folder names with ``_`` -> space.

    This covers ImageNet val after the usual valprep into class folders, CUB-200, Oxford Pets,
    Food-101, Places365, Stanford Cars, FGVC-Aircraft, VGG Flowers...

    Args:
        root: the data set folder.
        train_dir: the training tree ``root/<train_dir>`` (``None``: no training split).
        test_dir: the test tree ``root/<test_dir>`` (``None``: ``root`` itself is the tree).
    """

    def _folders(self) -> list[str]:
        tree = self.dirs["test"]
        if not tree.is_dir():
            raise FileNotFoundError(f"image folder root not found: {tree}")
        return sorted(p.name for p in tree.iterdir() if p.is_dir())

    def class_keys(self) -> list[str]:
        return self._folders()

    def class_names(self) -> list[str]:
        return [f.replace("_", " ") for f in self._folders()]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        samples, _ = read_image_folder(self.dirs[split])
        if split == "train":
            folders = sorted(p.name for p in self.dirs["train"].iterdir() if p.is_dir())
            if folders != self._folders():
                raise ValueError(
                    f"{self.dirs['train']} and {self.dirs['test']} have different class folders"
                )
        return ImageFiles(samples)
