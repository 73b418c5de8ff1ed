"""Places365 validation images in the distributed layout (single-label, evaluation only)."""

from __future__ import annotations

import re

from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources._layout import lines, need
from ramlico.data.sources.base import SingleLabelSource, image_files
from ramlico.data.sources.registry import register_source

__all__ = ["Places365", "places365_class_name"]

LAYOUT = "<root>/{categories_places365.txt, places365_val.txt, val_large/ or val_256/}"


def places365_class_name(category: str) -> str:
    """``/a/apartment_building/outdoor`` -> ``apartment_building-outdoor``: the form of the
    DCLIP/LaZSL descriptor keys (``_`` kept, the sub-category joined by ``-``; sentences turn
    ``_`` into spaces).

    Example:
        >>> places365_class_name("/a/apartment_building/outdoor")
        'apartment_building-outdoor'
    """
    return re.sub(r"^/[a-z]/", "", category).replace("/", "-")


@register_source("places365")
class Places365(SingleLabelSource):
    """``root/``: the val listing and the images in ``val_large/`` (reference, full resolution)
    or ``val_256/``."""

    splits = ("test",)

    def class_keys(self) -> list[str]:
        cats = [ln.split() for ln in lines(need(self.root / "categories_places365.txt",
                                                "places365", LAYOUT))]  # fmt: skip
        order = sorted(cats, key=lambda c: int(c[1]))
        if [int(c[1]) for c in order] != list(range(len(order))):
            raise ValueError("places365: categories_places365.txt must number classes 0..K-1")
        return [c[0] for c in order]

    def class_names(self) -> list[str]:
        return [places365_class_name(c) for c in self.class_keys()]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        listing = need(self.root / "places365_val.txt", "places365", LAYOUT)
        folder = next(
            (self.root / d for d in ("val_large", "val_256") if (self.root / d).is_dir()), None
        )
        if folder is None:
            raise FileNotFoundError(
                f"places365: neither {self.root / 'val_large'} nor {self.root / 'val_256'} "
                f"exists; expected {LAYOUT}"
            )
        samples = [
            (folder / name, int(label)) for name, label in (ln.split() for ln in lines(listing))
        ]
        return image_files(samples, f"places365 ({self.root})")
