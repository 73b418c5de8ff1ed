"""Your own multi-label data: one label file per split (``data=custom``)."""

from __future__ import annotations

from pathlib import Path

from ramlico.data.labels import LabelSpace
from ramlico.data.records import Record, read_any_label_file
from ramlico.data.sources.base import MultiLabelSource
from ramlico.data.sources.registry import register_source
from ramlico.utils import get_logger

__all__ = ["CustomLabelFiles"]

log = get_logger(__name__)


@register_source("custom")
class CustomLabelFiles(MultiLabelSource):
    """Label files (.csv, .jsonl, .json-lines, .ndjson, or RAM's .json) for train and test.

    Args:
        root: the data folder (configs write the files as ``${data.root}/...``).
        train_file, test_file: the label files.
        image_root: folder of relative image paths (default: each file's folder).
        seen, unseen: label lists (any order; stored sorted). Without them: seen = the labels of
            the training file (minus ``unseen``), unseen = the test file's labels that are not
            seen; ``unseen=[]`` is a closed-set label space (no zero-shot labels).

    Raises:
        ValueError: a missing ``train_file`` or ``test_file``.
    """

    label_files = True

    def __init__(
        self,
        root: str | Path,
        train_file: str | None = None,
        test_file: str | None = None,
        image_root: str | None = None,
        seen: list[str] | None = None,
        unseen: list[str] | None = None,
    ) -> None:
        super().__init__(root)
        if train_file is None or test_file is None:
            raise ValueError(
                f"source='custom' needs train_file and test_file, got {train_file!r}, {test_file!r}"
            )
        self.files = {"train": Path(train_file), "test": Path(test_file)}
        self.image_root = None if image_root is None else Path(image_root)
        self.seen, self.unseen = seen, unseen
        self._records: dict[str, list[Record]] = {}

    def records(self, split: str) -> list[Record]:
        self.require_split(split)
        if split not in self._records:
            self._records[split] = read_any_label_file(self.files[split], self.image_root)
        return self._records[split]

    def cache_key(self, split: str) -> str:
        return str(self.files[split].resolve())

    def label_space(self) -> LabelSpace:
        if self.seen is not None and self.unseen is not None:
            return LabelSpace(self.seen, self.unseen)
        unseen = set(self.unseen or [])
        seen = (
            set(self.seen)
            if self.seen is not None
            else ({x for r in self.records("train") for x in r.labels} - unseen)
        )
        if self.unseen is None:
            unseen = {x for r in self.records("test") for x in r.labels} - seen
        space = LabelSpace(sorted(seen), sorted(unseen))
        log.info(
            "custom label space inferred from the label files: %r%s", space,
            "" if unseen else " (closed-set: every test label is a training label; pass "
            "data.unseen=[...] for zero-shot labels)",
        )  # fmt: skip
        return space
