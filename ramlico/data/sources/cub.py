"""CUB-200-2011 in its distributed layout, descriptor-file class names (single-label)."""

from __future__ import annotations

import re
from pathlib import Path

from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import lines, need
from ramlico.data.sources.base import SingleLabelSource, image_files
from ramlico.data.sources.registry import register_source

__all__ = ["CUB", "cub_class_name"]

LAYOUT = (
    "<root>/{images/<NNN.Class>/<image>.jpg, classes.txt, images.txt, "
    "image_class_labels.txt, train_test_split.txt} (the extracted CUB_200_2011 folder)"
)
PARTS = {"test": {"0"}, "train": {"1"}, "all": {"0", "1"}}


def cub_class_name(folder: str) -> str:
    """CUB folder -> descriptor-file class name.

    Drop the numeric prefix, ``_`` -> space; with three or more words, hyphen-join all words but
    the last.

    Example:
        >>> cub_class_name("001.Black_footed_Albatross")
        'Black-footed Albatross'
        >>> cub_class_name("002.Laysan_Albatross")
        'Laysan Albatross'
    """
    words = re.sub(r"^\d+\.", "", folder).split("_")
    if len(words) >= 3:
        return "-".join(words[:-1]) + " " + words[-1]
    return " ".join(words)


@register_source("cub")
class CUB(SingleLabelSource):
    """CUB-200-2011: ``train_test_split.txt`` gives the splits (test = ``0``).

    Args:
        root: the extracted ``CUB_200_2011`` folder.
        split: the part evaluated as the test split: ``test`` (default), ``train`` or ``all``.
    """

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root)
        split = split or "test"
        if split not in PARTS:
            raise ValueError(f"cub: split must be 'test', 'train' or 'all', got {split!r}")
        self.split = split

    def _classes(self) -> list[list[str]]:
        classes = [ln.split(maxsplit=1) for ln in lines(need(self.root / "classes.txt", "cub",
                                                               LAYOUT))]  # fmt: skip
        if [int(c[0]) for c in classes] != list(range(1, len(classes) + 1)):
            raise ValueError(f"cub: {self.root / 'classes.txt'} must number classes 1..K in order")
        return classes

    def class_keys(self) -> list[str]:
        return [c[1] for c in self._classes()]

    def class_names(self) -> list[str]:
        return [cub_class_name(c[1]) for c in self._classes()]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        names = ("images.txt", "image_class_labels.txt", "train_test_split.txt")
        files = {n: need(self.root / n, "cub", LAYOUT) for n in names}
        self._classes()
        images = dict(ln.split(maxsplit=1) for ln in lines(files["images.txt"]))
        labels = dict(ln.split() for ln in lines(files["image_class_labels.txt"]))
        is_train = dict(ln.split() for ln in lines(files["train_test_split.txt"]))
        want = PARTS[self.split if split == "test" else "train"]
        folder = need(self.root / "images", "cub", LAYOUT)
        samples = [
            (folder / rel, int(labels[i]) - 1) for i, rel in images.items() if is_train[i] in want
        ]
        return image_files(samples, f"cub ({self.root}, {split})")
