"""MS-COCO 2014 with the 48 seen / 17 unseen split (multi-label; ``data=coco``)."""

from __future__ import annotations

from pathlib import Path

from ramlico.data.labels import COCO_SEEN, COCO_UNSEEN, LabelSpace
from ramlico.data.records import Record, read_coco_file
from ramlico.data.sources.base import MultiLabelSource
from ramlico.data.sources.registry import register_source

__all__ = ["COCO"]


@register_source("coco")
class COCO(MultiLabelSource):
    """COCO 2014: train2014 for training, val2014 for the ZSL / GZSL tests.

    Args:
        root: the COCO folder.
        instances_train, instances_val: label files, official ``instances_*.json`` or RAM's json
            lists (``train_48_filtered.json`` / ``test_65_filtered.json``), detected by content;
            default ``root/annotations/instances_{train,val}2014.json``.
        image_root: the folder holding ``train2014/`` and ``val2014/`` (default ``root``).
    """

    def __init__(
        self,
        root: str | Path,
        instances_train: str | None = None,
        instances_val: str | None = None,
        image_root: str | None = None,
    ) -> None:
        super().__init__(root)
        self.files = {"train": instances_train, "test": instances_val}
        self.image_root = Path(image_root) if image_root is not None else self.root

    def label_space(self) -> LabelSpace:
        return LabelSpace(COCO_SEEN, COCO_UNSEEN)

    def records(self, split: str) -> list[Record]:
        self.require_split(split)
        images = self.image_root / ("train2014" if split == "train" else "val2014")
        file = self.files[split] or self.root / "annotations" / f"instances_{images.name}.json"
        return read_coco_file(Path(file), images, self.label_space().gzsl)
