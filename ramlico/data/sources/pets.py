"""Oxford-IIIT Pets in its distributed layout (single-label)."""

from __future__ import annotations

from pathlib import Path

from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import lines, need
from ramlico.data.sources.base import SingleLabelSource, image_files
from ramlico.data.sources.registry import register_source

__all__ = ["Pets"]

LAYOUT = "<root>/{images/<Breed>_<n>.jpg, annotations/test.txt, annotations/trainval.txt}"


@register_source("pets")
class Pets(SingleLabelSource):
    """``oxford-iiit-pet/``: breeds named from the image stems (``Abyssinian``, ``basset hound``).

    Args:
        root: the extracted ``oxford-iiit-pet`` folder.
        split: the part evaluated as the test split: ``test`` (default) or ``trainval``; the
            training split is ``trainval``.
    """

    def __init__(self, root: str | Path, split: str | None = None) -> None:
        super().__init__(root)
        split = split or "test"
        if split not in ("test", "trainval"):
            raise ValueError(f"pets: split must be 'test' or 'trainval', got {split!r}")
        self.split = split

    def _read(self, part: str) -> tuple[list[tuple[Path, int]], list[str]]:
        ann = need(self.root / "annotations" / f"{part}.txt", "pets", LAYOUT)
        images = need(self.root / "images", "pets", LAYOUT)
        samples: list[tuple[Path, int]] = []
        names: dict[int, str] = {}
        for ln in lines(ann):
            if ln.startswith("#"):
                continue
            stem, class_id = ln.split()[:2]
            label = int(class_id) - 1
            names[label] = stem.rsplit("_", 1)[0].replace("_", " ")
            samples.append((images / f"{stem}.jpg", label))
        if sorted(names) != list(range(len(names))):
            raise ValueError(f"pets: {ann} does not cover class ids 1..{len(names)}")
        return samples, [names[k] for k in range(len(names))]

    def class_names(self) -> list[str]:
        return self._read(self.split)[1]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        samples, _ = self._read(self.split if split == "test" else "trainval")
        return image_files(samples, f"pets ({self.root}, {split})")
