"""Food-101 in its distributed layout (single-label)."""

from __future__ import annotations

from pathlib import Path

from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import lines, need
from ramlico.data.sources.base import SingleLabelSource, image_files
from ramlico.data.sources.registry import register_source

__all__ = ["Food101"]

LAYOUT = "<root>/{images/<class>/<id>.jpg, meta/classes.txt, meta/test.txt, meta/train.txt}"


@register_source("food101")
class Food101(SingleLabelSource):
    """``food-101/``: ``meta/classes.txt`` gives the label order, ``_`` -> space in the names.

    Args:
        root: the extracted ``food-101`` folder.
        split: the part evaluated as the test split: ``test`` (default) or ``train``.
    """

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root)
        split = split or "test"
        if split not in ("test", "train"):
            raise ValueError(f"food101: split must be 'test' or 'train', got {split!r}")
        self.split = split

    def class_keys(self) -> list[str]:
        return lines(need(self.root / "meta" / "classes.txt", "food101", LAYOUT))

    def class_names(self) -> list[str]:
        return [c.replace("_", " ") for c in self.class_keys()]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        index = {c: i for i, c in enumerate(self.class_keys())}
        part = self.split if split == "test" else "train"
        listing = need(self.root / "meta" / f"{part}.txt", "food101", LAYOUT)
        images = need(self.root / "images", "food101", LAYOUT)
        samples = [(images / f"{rel}.jpg", index[rel.split("/")[0]]) for rel in lines(listing)]
        return image_files(samples, f"food101 ({self.root}, {split})")
