"""NUS-WIDE 925 seen / 81 unseen, read from the dataset's own files (docs/data.md, "NUS-WIDE").

Expected layout under ``root`` (the official NUS-WIDE downloads, unpacked; the first existing
candidate is used where two are listed)::

    ConceptsList/Concepts81.txt  or  Concepts81.txt
        the 81 concepts, one per line (the unseen labels)
    NUS_WID_Tags/TagList1k.txt   or  ConceptsList/TagList1k.txt
        the 1000 most frequent Flickr tags, one per line
    NUS_WID_Tags/AllTags1k.txt
        one row per image (Imagelist order) of len(TagList1k) whitespace-separated 0/1 ints
    ImageList/Imagelist.txt
        every image, e.g. ``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg`` (269,648 lines)
    ImageList/TrainImagelist.txt, ImageList/TestImagelist.txt
        the official split (161,789 / 107,859 lines), e.g. ``actor\\0001_2124494179.jpg``
    Groundtruth/AllLabels/Labels_<concept>.txt  or  AllLabels/Labels_<concept>.txt
        one 0/1 per image (Imagelist order), the human annotation of each concept
    Flickr/<folder>/<file>.jpg
        the images

Every list entry is reduced to its last two path components ``<folder>/<file>`` (Windows
backslashes accepted), which both names the image ``root/Flickr/<folder>/<file>`` and matches the
train/test lists to Imagelist, whichever prefix the lists carry.

Labels: seen = TagList1k minus the tags whose string equals a concept (925 on the real data: 75
of the 81 concepts are tags); unseen = the concepts. An image's seen labels come from AllTags1k
(noisy user tags), its unseen labels from the Groundtruth files. Images without any label are kept
(all-negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ramlico.data.labels import LabelSpace
from ramlico.data.records import Record
from ramlico.utils import get_logger

log = get_logger(__name__)

CONCEPTS_FILES = ("ConceptsList/Concepts81.txt", "Concepts81.txt")
TAGLIST_FILES = ("NUS_WID_Tags/TagList1k.txt", "ConceptsList/TagList1k.txt")
ALLTAGS_FILE = "NUS_WID_Tags/AllTags1k.txt"
IMAGELIST_FILE = "ImageList/Imagelist.txt"
SPLIT_FILES = {"train": "ImageList/TrainImagelist.txt", "test": "ImageList/TestImagelist.txt"}
GROUNDTRUTH_DIRS = ("Groundtruth/AllLabels", "AllLabels")
IMAGE_DIR = "Flickr"


def _find(root: Path, candidates: Sequence[str], what: str) -> Path:
    for rel in candidates:
        if (root / rel).exists():
            return root / rel
    tried = ", ".join(str(root / rel) for rel in candidates)
    raise FileNotFoundError(f"NUS-WIDE {what} not found; looked for {tried}")


def _read_names(path: Path) -> list[str]:
    """First whitespace-separated field of every non-blank line."""
    with path.open(encoding="utf-8", errors="replace") as f:
        return [line.split()[0] for line in f if line.strip()]


def image_key(entry: str) -> str:
    """``<folder>/<file>`` of an image-list entry.

    Example: ``C:\\ImageData\\Flickr\\actor\\1.jpg`` -> ``actor/1.jpg``.
    """
    parts = [p for p in entry.strip().replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:])


def _read_keys(path: Path) -> list[str]:
    keys = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            key = image_key(text)
            if "/" not in key:
                raise ValueError(
                    f"{path}:{line}: entry {text.strip()!r} has no <folder>\\<file> part; "
                    "expected e.g. actor\\0001_2124494179.jpg"
                )
            keys.append(key)
    return keys


def read_nus_label_space(root: Path) -> LabelSpace:
    """Seen (TagList1k minus concepts) and unseen (Concepts81) labels of NUS-WIDE under ``root``."""
    root = Path(root)
    concepts = _read_names(_find(root, CONCEPTS_FILES, "concept list (81 concepts)"))
    tags = _read_names(_find(root, TAGLIST_FILES, "tag list (1000 Flickr tags)"))
    concept_set = set(concepts)
    seen = [t for t in tags if t not in concept_set]
    log.info(
        "NUS-WIDE: %d tags - %d equal to a concept = %d seen labels; %d unseen concepts",
        len(tags),
        len(tags) - len(seen),
        len(seen),
        len(concepts),
    )
    return LabelSpace(seen=seen, unseen=concepts)


def _read_groundtruth(root: Path, concepts: Sequence[str], n_images: int) -> np.ndarray:
    """(n_images, n_concepts) bool matrix from Groundtruth/AllLabels/Labels_<concept>.txt."""
    folder = _find(root, GROUNDTRUTH_DIRS, "ground-truth folder (Labels_<concept>.txt files)")
    columns = []
    for concept in concepts:
        path = folder / f"Labels_{concept}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"NUS-WIDE ground truth of concept {concept!r} not found: {path}"
            )
        values = np.array(path.read_text().split(), dtype=np.int64)
        if values.shape[0] != n_images or not np.isin(values, (0, 1)).all():
            raise ValueError(
                f"{path}: expected {n_images} values of 0/1 (one per line of {IMAGELIST_FILE}), "
                f"got {values.shape[0]} values in {sorted(set(values.tolist()))[:5]}"
            )
        columns.append(values.astype(bool))
    return np.stack(columns, axis=1) if columns else np.zeros((n_images, 0), dtype=bool)


def read_nus_wide(root: Path, split: Literal["train", "test"]) -> tuple[list[Record], LabelSpace]:
    """Records of the official NUS-WIDE train or test split with seen tags and unseen concepts.

    Args:
        root: NUS-WIDE folder (layout in the module docstring).
        split: ``"train"`` (TrainImagelist) or ``"test"`` (TestImagelist).

    Returns:
        (records, label_space): records in Imagelist order with labels = present seen tags
        (TagList1k order) then positive concepts (Concepts81 order); label_space =
        ``read_nus_label_space(root)``.

    Raises:
        FileNotFoundError: a file of the layout is missing (names it and what it holds).
        ValueError: unknown split, or files disagree in length (names the file and the counts).
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown NUS-WIDE split {split!r}; allowed: {sorted(SPLIT_FILES)}")
    root = Path(root)
    space = read_nus_label_space(root)
    tags = _read_names(_find(root, TAGLIST_FILES, "tag list (1000 Flickr tags)"))
    concepts = list(space.unseen)
    imagelist = _find(root, (IMAGELIST_FILE,), "image list (all images, one per line)")
    split_file = _find(root, (SPLIT_FILES[split],), f"{split} image list")
    alltags = _find(root, (ALLTAGS_FILE,), "per-image tag matrix (one row of 0/1 per image)")
    keys = _read_keys(imagelist)
    wanted = set(_read_keys(split_file))
    missing = wanted - set(keys)
    if missing:
        raise ValueError(
            f"{split_file}: {len(missing)} images are not in {imagelist}, "
            f"e.g. {sorted(missing)[:5]}"
        )
    truth = _read_groundtruth(root, concepts, len(keys))
    concept_set = set(concepts)
    seen_columns = [i for i, t in enumerate(tags) if t not in concept_set]
    records: list[Record] = []
    n_rows = 0
    with alltags.open(encoding="utf-8") as f:
        for row, text in enumerate(f):
            if row >= len(keys):
                n_rows = row + 1
                break
            n_rows = row + 1
            if keys[row] not in wanted:
                continue
            values = text.split()
            if len(values) != len(tags):
                raise ValueError(
                    f"{alltags}:{row + 1}: {len(values)} values, expected {len(tags)} "
                    "(one per tag of TagList1k)"
                )
            labels = [tags[i] for i in seen_columns if values[i] != "0"]
            labels += [concepts[j] for j in np.flatnonzero(truth[row])]
            records.append(
                Record(root / IMAGE_DIR / keys[row], tuple(labels), f"{imagelist}:{row + 1}")
            )
    if n_rows != len(keys):
        raise ValueError(
            f"{alltags}: {'more' if n_rows > len(keys) else n_rows} rows, expected {len(keys)} "
            f"(one per line of {imagelist})"
        )
    n_empty = sum(1 for r in records if not r.labels)
    log.info(
        "NUS-WIDE %s: %d images (%d without any label, kept as all-negative)",
        split,
        len(records),
        n_empty,
    )
    return records, space
