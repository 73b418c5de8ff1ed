"""Multi-label image dataset over a fixed label order: records -> (image, multi-hot target).

Nothing is dropped silently: labels outside the vocabulary raise (or, with ``drop_unknown=True``,
are counted in ``dropped_labels``), unreadable images raise when loaded (or, with
``skip_bad_images=True``, are found at construction and listed in ``skipped``), and images left
without any label of the vocabulary are kept as all-negative and counted in ``n_no_label``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ramlico.data.check import IMAGE_ERRORS, check_images
from ramlico.data.records import Record
from ramlico.utils import get_logger

log = get_logger(__name__)

MAX_LISTED = 20


def _sources(records: Sequence[Record], labels: set[str]) -> list[str]:
    """Distinct files (with a first line) whose records use any of ``labels``, at most 5."""
    found: dict[str, str] = {}
    for r in records:
        if r.source and labels.intersection(r.labels):
            found.setdefault(r.source.rsplit(":", 1)[0] if ":" in r.source else r.source, r.source)
            if len(found) >= 5:
                break
    return list(found.values())


def unknown_labels(records: Sequence[Record], names: Sequence[str]) -> Counter[str]:
    """Occurrences (one per record) of labels that are not in ``names``."""
    known = set(names)
    return Counter(x for r in records for x in r.labels if x not in known)


def check_vocabulary(records: Sequence[Record], names: Sequence[str]) -> None:
    """Raise ValueError listing (sorted, first 20) labels of ``records`` outside ``names``."""
    unknown = unknown_labels(records, names)
    if unknown:
        listed = sorted(unknown)
        raise ValueError(
            f"{len(listed)} labels are not among the {len(names)} label names: "
            f"{listed[:MAX_LISTED]}{' ...' if len(listed) > MAX_LISTED else ''} "
            f"(first uses: {_sources(records, set(listed)) or 'source unknown'}); fix the "
            "label file, or add the labels to data.seen / data.unseen (custom data)"
        )


def default_transform() -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> (3, H, W) float32 in [0, 1], no resizing."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()])


class MultiLabelDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images with multi-hot targets over ``label_names``.

    Args:
        records: images and their label names.
        label_names: the label order, C names (e.g. ``LabelSpace.for_split("gzsl")``).
        transform: PIL RGB image -> (3, H, W) float tensor; default ``default_transform()``.
        skip_bad_images: if True, decode every image now (:func:`ramlico.data.check.
            check_images`), drop the ones that fail and list them in ``skipped``; if False, a
            bad image raises when loaded.
        drop_unknown: if True, labels outside ``label_names`` are dropped and counted (protocol
            restriction, e.g. seen labels only for training); if False they raise ValueError.

    Attributes:
        records: the records kept (after skipping).
        skipped: (path, reason) of each skipped image; ``n_skipped`` its length.
        dropped_labels: Counter of dropped label occurrences; ``n_dropped_labels`` their total.
        n_no_label: number of kept images without any label of ``label_names`` (all-negative).

    Items:
        ``(image, target)``: image as returned by ``transform``; target (C,) float32 multi-hot.
    """

    def __init__(
        self,
        records: Sequence[Record],
        label_names: Sequence[str],
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        skip_bad_images: bool = False,
        drop_unknown: bool = False,
    ) -> None:
        names = tuple(label_names)
        dupes = sorted(n for n, c in Counter(names).items() if c > 1)
        if dupes:
            raise ValueError(f"label_names contain duplicates {dupes[:MAX_LISTED]}; list each once")
        if not names:
            raise ValueError("label_names is empty; a dataset needs at least one label")
        self.label_names = names
        self.transform = default_transform() if transform is None else transform
        records = list(records)
        self.dropped_labels: Counter[str] = Counter()
        if drop_unknown:
            self.dropped_labels = unknown_labels(records, names)
            if self.dropped_labels:
                log.info(
                    "dropped %d occurrences of %d labels outside the %d label names: %s",
                    self.n_dropped_labels,
                    len(self.dropped_labels),
                    len(names),
                    sorted(self.dropped_labels)[:MAX_LISTED],
                )
        else:
            check_vocabulary(records, names)
        self.skipped: list[tuple[Path, str]] = []
        if skip_bad_images:
            records = self._scan(records)
        self.records = records
        index = {name: i for i, name in enumerate(names)}
        self._indices = [
            torch.tensor(sorted({index[x] for x in r.labels if x in index}), dtype=torch.long)
            for r in records
        ]
        self.n_no_label = sum(1 for i in self._indices if i.numel() == 0)
        if self.n_no_label:
            log.warning(
                "%d of %d images have no label among the %d label names; kept as all-negative "
                "(as RAM does)",
                self.n_no_label,
                len(records),
                len(names),
            )

    @property
    def n_dropped_labels(self) -> int:
        return sum(self.dropped_labels.values())

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def _scan(self, records: list[Record]) -> list[Record]:
        bad = check_images([r.image for r in records], progress=False)
        self.skipped = [(r.image, bad[r.image]) for r in records if r.image in bad]
        kept = [r for r in records if r.image not in bad]
        if self.skipped:
            log.warning(
                "skipped %d of %d unreadable images, e.g. %s",
                len(self.skipped),
                len(records),
                [str(p) for p, _ in self.skipped[:5]],
            )
        return kept

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, idx: int) -> Image.Image:
        """The RGB PIL image of record ``idx``; errors name the path and the fix."""
        record = self.records[idx]
        where = f"record {idx}" + (f" from {record.source}" if record.source else "")
        try:
            with Image.open(record.image) as im:
                return im.convert("RGB")
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"image not found: {record.image} ({where}); fix the path (or data.image_root), "
                "or set data.skip_bad_images=true to drop missing images before training"
            ) from err
        except IMAGE_ERRORS as err:
            raise OSError(
                f"cannot read image {record.image} ({where}): {err}; replace the file, or set "
                "data.skip_bad_images=true to drop unreadable images before training"
            ) from err

    def target(self, idx: int) -> torch.Tensor:
        """(C,) float32 multi-hot target of record ``idx``."""
        target = torch.zeros(len(self.label_names), dtype=torch.float32)
        target[self._indices[idx]] = 1.0
        return target

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.load_image(idx)), self.target(idx)

    def positives_per_label(self) -> torch.Tensor:
        """(C,) long: number of images in which each label is positive."""
        counts = torch.zeros(len(self.label_names), dtype=torch.long)
        for i in self._indices:
            counts[i] += 1
        return counts
