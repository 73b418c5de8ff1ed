"""NUS-WIDE, 925 seen tags / 81 unseen concepts from the dataset's own files (multi-label)."""

from __future__ import annotations

from ramlico.data.labels import LabelSpace
from ramlico.data.nus_wide import read_nus_label_space, read_nus_wide
from ramlico.data.records import Record
from ramlico.data.sources.base import MultiLabelSource
from ramlico.data.sources.registry import register_source

__all__ = ["NUSWide"]


@register_source("nus_wide")
class NUSWide(MultiLabelSource):
    """The NUS-WIDE folder ``root`` (layout in :mod:`ramlico.data.nus_wide`), official split."""

    def label_space(self) -> LabelSpace:
        return read_nus_label_space(self.root)

    def records(self, split: str) -> list[Record]:
        self.require_split(split)
        records, _ = read_nus_wide(self.root, split)  # type: ignore[arg-type]
        return records
