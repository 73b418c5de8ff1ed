"""Image records (path + label names) and readers for COCO, RAM's json lists and custom label files.

A ``Record`` is one image and the names of its positive labels; readers only parse files and resolve
paths. Which labels count (seen / unseen / GZSL) is decided later by ``MultiLabelDataset``.

Formats:
    * COCO ``instances_*.json`` (official): ``images`` (id, file_name), ``annotations`` (image_id,
      category_id), ``categories`` (id, name). -> ``read_coco_instances``
    * RAM's json: ``{"classes": [...], "images": [[path, [label, ...]], ...]}`` with one label
      entry per instance (duplicates collapse). RAM's released files hold absolute paths of the
      authors' machine (``/mnt/nas/.../COCO_val2014_000000331627.jpg``). -> ``read_ram_json``
    * Custom CSV (header ``image,labels``, labels separated by ``|``) or JSON lines
      (``{"image": "...", "labels": [...]}``). -> ``read_label_file``
NUS-WIDE has its own reader in ``ramlico.data.nus_wide``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ramlico.data.labels import COCO_SEEN, COCO_UNSEEN
from ramlico.utils import get_logger

log = get_logger(__name__)

LABEL_SEPARATOR = "|"
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json-lines", ".ndjson")


@dataclass(frozen=True)
class Record:
    """One image and its positive label names.

    Attributes:
        image: path of the image file.
        labels: positive label names, duplicates removed, in first-seen order.
        source: where the record came from (``"file"`` or ``"file:line"``), for error messages.
    """

    image: Path
    labels: tuple[str, ...]
    source: str | None = None


def unique_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Remove duplicate label names, keeping first-seen order (instances collapse)."""
    return tuple(dict.fromkeys(labels))


def _resolve(path: str, image_root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else image_root / p


def read_text(path: Path) -> str:
    """The text of a label file: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8").

    Raises:
        ValueError: the file is not UTF-8 (a UTF-16 byte-order mark, or bytes that are not UTF-8,
            e.g. a Latin-1 / Windows-1252 export); the message names the file, line and column.
    """
    raw = Path(path).read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(
            f"{path}:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as "
            "UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')"
        )
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        try:
            raw.decode("cp1252")
            guess = "it looks like Latin-1 / Windows-1252"
        except UnicodeDecodeError:
            guess = "its encoding is unknown"
        raise ValueError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {column}; {guess}). "
            "Save the file as UTF-8 (UTF-8 with BOM is fine), e.g. "
            f"`iconv -f cp1252 -t utf-8 {Path(path).name} > fixed{Path(path).suffix}`"
        ) from None


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected {what}") from err


def read_coco_instances(
    instances_json: Path,
    image_root: Path,
    vocabulary: Sequence[str] | None = None,
) -> list[Record]:
    """Read an official COCO ``instances_*.json`` into records over a label vocabulary.

    Annotations of categories outside ``vocabulary`` (by protocol the 15 multi-word COCO classes)
    are dropped, counted and logged. Duplicate annotations collapse. Images without any annotation
    of the vocabulary are kept as all-negative records (counted and logged), as RAM does.

    Args:
        instances_json: path of ``instances_train2014.json`` / ``instances_val2014.json``.
        image_root: folder holding the images (``file_name`` is resolved against it).
        vocabulary: label names to keep; default the 65 COCO labels ``COCO_SEEN + COCO_UNSEEN``.

    Returns:
        One record per entry of ``images``, in file order.

    Raises:
        FileNotFoundError: the json file does not exist.
        ValueError: the file lacks ``images``/``annotations``/``categories`` or an annotation points
            to an unknown image or category id.
    """
    instances_json = Path(instances_json)
    data = _load_json(instances_json, "COCO instances json")
    return _coco_records(data, instances_json, Path(image_root), vocabulary)


def _coco_records(
    data: Any, instances_json: Path, image_root: Path, vocabulary: Sequence[str] | None
) -> list[Record]:
    missing = [
        k
        for k in ("images", "annotations", "categories")
        if not isinstance(data, dict) or k not in data
    ]
    if missing:
        raise ValueError(
            f"{instances_json}: missing keys {missing}; expected an official COCO instances file "
            "(for RAM's {'classes', 'images'} lists use read_ram_json)"
        )
    keep = set(COCO_SEEN + COCO_UNSEEN if vocabulary is None else vocabulary)
    categories = {c["id"]: c["name"] for c in data["categories"]}
    image_ids = [im["id"] for im in data["images"]]
    labels: dict[Any, list[str]] = {i: [] for i in image_ids}
    dropped: Counter[str] = Counter()
    for k, ann in enumerate(data["annotations"]):
        name = categories.get(ann.get("category_id"))
        if name is None:
            raise ValueError(
                f"{instances_json}: annotation {k} has category_id {ann.get('category_id')!r}, "
                f"which is not among the {len(categories)} categories of the file"
            )
        if ann.get("image_id") not in labels:
            raise ValueError(
                f"{instances_json}: annotation {k} has image_id {ann.get('image_id')!r}, "
                "which is not in the file's images list"
            )
        if name in keep:
            labels[ann["image_id"]].append(name)
        else:
            dropped[name] += 1
    if dropped:
        log.info(
            "%s: dropped %d annotations of %d categories outside the %d-label vocabulary: %s",
            instances_json,
            sum(dropped.values()),
            len(dropped),
            len(keep),
            dict(sorted(dropped.items())),
        )
    records = [
        Record(image_root / im["file_name"], unique_labels(labels[im["id"]]), str(instances_json))
        for im in data["images"]
    ]
    n_empty = sum(1 for r in records if not r.labels)
    if n_empty:
        log.warning(
            "%s: %d of %d images have no label of the vocabulary; kept as all-negative "
            "(as RAM does)",
            instances_json,
            n_empty,
            len(records),
        )
    return records


def read_ram_json(path: Path, image_root: Path | None = None) -> list[Record]:
    """Read RAM's image list ``{"classes": [...], "images": [[path, [labels...]], ...]}``.

    Relative paths are resolved against ``image_root`` (default: the json's folder). Absolute paths
    that exist are kept; absolute paths that do not exist (RAM's files hold the authors' paths) are
    remapped to ``image_root / <file name>`` and the number remapped is logged.

    Args:
        path: the json file (e.g. ``test_65_filtered.json``).
        image_root: folder holding the images.

    Returns:
        One record per entry of ``images``, in file order; instance duplicates collapsed.

    Raises:
        FileNotFoundError: the json file does not exist.
        ValueError: the structure differs from the format above (names the entry index).
    """
    path = Path(path)
    root = path.parent if image_root is None else Path(image_root)
    return _ram_records(_load_json(path, "RAM image-list json"), path, root)


def _ram_records(data: Any, path: Path, root: Path) -> list[Record]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(
            f"{path}: expected an object with an 'images' list of [path, [labels]] entries "
            "(for official COCO instances files use read_coco_instances)"
        )
    records, n_remapped = [], 0
    for k, entry in enumerate(data["images"]):
        ok = (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], list)
            and all(isinstance(x, str) for x in entry[1])
        )
        if not ok:
            raise ValueError(
                f"{path}: images entry {k} is {str(entry)[:120]}; expected [path, [label, ...]]"
            )
        image = Path(entry[0])
        if image.is_absolute() and not image.exists():
            image, n_remapped = root / image.name, n_remapped + 1
        elif not image.is_absolute():
            image = root / image
        records.append(Record(image, unique_labels(entry[1]), str(path)))
    if n_remapped:
        log.info(
            "%s: %d absolute paths not found here, remapped to %s/<file name>",
            path,
            n_remapped,
            root,
        )
    classes = data.get("classes")
    if isinstance(classes, list):
        outside = sorted({x for r in records for x in r.labels} - set(classes))
        if outside:
            log.warning(
                "%s: labels %s are used by images but missing from 'classes'", path, outside[:20]
            )
    return records


def _parse_csv(path: Path, root: Path) -> list[Record]:
    records = []
    with io.StringIO(read_text(path), newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip() for h in header] != ["image", "labels"]:
            raise ValueError(
                f"{path}:1: header is {header}; expected 'image,labels' "
                f"(labels separated by '{LABEL_SEPARATOR}')"
            )
        for row in rows:
            line = rows.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise ValueError(
                    f"{path}:{line}: expected 2 fields (image,labels), got {len(row)}: {row}; "
                    f"separate labels with '{LABEL_SEPARATOR}', not ','"
                )
            image, field = row[0].strip(), row[1].strip()
            labels = [x.strip() for x in field.split(LABEL_SEPARATOR)] if field else []
            if not image or any(not x for x in labels):
                raise ValueError(
                    f"{path}:{line}: empty image path or empty label in {row}; "
                    f"write 'path,label1{LABEL_SEPARATOR}label2'"
                )
            records.append(Record(_resolve(image, root), unique_labels(labels), f"{path}:{line}"))
    return records


def _parse_jsonl(path: Path, root: Path) -> list[Record]:
    records = []
    with io.StringIO(read_text(path)) as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line}: not valid JSON ({err})") from err
            ok = (
                isinstance(row, dict)
                and isinstance(row.get("image"), str)
                and row["image"].strip()
                and isinstance(row.get("labels"), list)
                and all(isinstance(x, str) and x.strip() for x in row["labels"])
            )
            if not ok:
                raise ValueError(
                    f"{path}:{line}: got {text.strip()[:120]}; expected "
                    '{"image": "path", "labels": ["label", ...]} with non-empty strings'
                )
            labels = unique_labels(x.strip() for x in row["labels"])
            records.append(Record(_resolve(row["image"].strip(), root), labels, f"{path}:{line}"))
    return records


def read_label_file(path: Path, image_root: Path | None = None) -> list[Record]:
    """Read a custom label file: CSV (.csv) or JSON lines (.jsonl, .json-lines, .ndjson).

    CSV: header ``image,labels``; one row per image; labels separated by ``|`` (an empty cell gives
    a record without labels; ``ramlico.data.check`` reports those). JSON lines: one
    ``{"image": "...", "labels": [...]}`` object per line. UTF-8, with or without a byte-order
    mark (:func:`read_text`). Blank lines are skipped. Relative image paths are resolved against
    ``image_root`` (default: the label file's folder).

    Returns:
        One record per row, in file order, with ``source = "file:line"``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown suffix, or a malformed row (names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    root = path.parent if image_root is None else Path(image_root)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _parse_csv(path, root)
    if suffix in JSONL_SUFFIXES:
        return _parse_jsonl(path, root)
    raise ValueError(
        f"{path}: unknown label-file suffix {suffix!r}; "
        f"use one of {list(CSV_SUFFIXES + JSONL_SUFFIXES)}"
    )


def read_coco_file(
    path: Path, image_root: Path, vocabulary: Sequence[str] | None = None
) -> list[Record]:
    """Read a COCO label file in either format, chosen by content.

    An object with ``annotations`` and ``categories`` is an official instances file
    (``read_coco_instances`` with ``vocabulary``, default the 65 labels); one with ``images`` as
    [path, labels] pairs is RAM's list (``read_ram_json``; its labels are taken as they are).
    """
    path = Path(path)
    data = _load_json(path, "COCO label file")
    if isinstance(data, dict) and "annotations" in data and "categories" in data:
        return _coco_records(data, path, Path(image_root), vocabulary)
    return _ram_records(data, path, Path(image_root))


def read_any_label_file(path: Path, image_root: Path | None = None) -> list[Record]:
    """``.json`` -> RAM's list (:func:`read_ram_json`); anything else -> :func:`read_label_file`."""
    if Path(path).suffix.lower() == ".json":
        return read_ram_json(path, image_root)
    return read_label_file(path, image_root)
