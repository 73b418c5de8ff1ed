"""Up-front data checks: every image decodes, label files are clean; found before training starts.

What is checked (per split):

* images: the file exists and decodes (PIL opens it and decodes it at reduced size, which
  catches truncated and corrupt files that a header check misses); checked in parallel threads
  with a progress bar, and cached (path, size and modification time), so a second run over the
  same files takes a fraction of a second;
* empty label cells: a row of a CSV / JSON-lines file without any label (an error unless
  ``data.allow_empty_labels=true`` keeps them as all-negative images);
* duplicate rows: the same image listed twice in one file with the same labels (a warning; the
  first row is kept) or with different labels (an error naming both lines);
* the same image in two splits (a warning: train/test overlap inflates results).

Label-file encodings are checked when the files are read (``ramlico.data.records.read_text``:
UTF-8 with or without a byte-order mark; anything else is an error naming the file and line).

``MultiLabelDataModule`` and ``ClassificationDataModule`` run these checks in
``setup`` by default (``data.check_images=true``) and raise one :class:`DataCheckError` listing
every problem. As a command, with the same arguments as ``train.py``::

    python -m ramlico.data.check experiment=ram_custom data.root=/data/mine
    python -m ramlico.data.check path/to/train.csv path/to/test.csv --image-root /data/mine

The command reports everything it finds and exits with status 1 if there is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ramlico.data.records import Record
from ramlico.utils import get_logger

__all__ = [
    "DataCheckError",
    "SplitReport",
    "check_images",
    "check_records",
    "image_error",
    "main",
    "overlapping_images",
]

log = get_logger(__name__)

CHECK_VERSION = 1  # bump when image_error changes what it accepts (invalidates the caches)
MAX_LISTED = 20
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
DRAFT_SIZE = 64  # JPEGs are decoded at 1/2..1/8 scale (DCT scaling): fast, still reads every byte


class DataCheckError(ValueError):
    """Problems found by the data checks; the message lists every one and the fix."""


def image_error(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (``None``: it opens and decodes).

    The image is decoded (at reduced scale for JPEG), not only opened, so truncated files fail.
    """
    try:
        with Image.open(path) as im:
            im.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))
            im.load()
    except FileNotFoundError:
        return "missing"
    except IMAGE_ERRORS as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None


def cache_dir() -> Path:
    """Where image-check results are cached: ``$RAMLICO_CACHE_DIR`` or ``~/.cache/ramlico``."""
    root = os.environ.get("RAMLICO_CACHE_DIR") or Path.home() / ".cache" / "ramlico"
    return Path(root) / "image_checks"


class _Cache:
    """Check results keyed by absolute path, stored with the file's size and mtime (one JSON)."""

    def __init__(self, key: str | None) -> None:
        self.file = None
        self.entries: dict[str, list[Any]] = {}
        if key is None:
            return
        digest = hashlib.sha1(f"{CHECK_VERSION}:{key}".encode()).hexdigest()[:20]
        self.file = cache_dir() / f"{digest}.json"
        try:
            self.entries = json.loads(self.file.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def lookup(self, path: Path, stat: os.stat_result) -> tuple[bool, str | None]:
        entry = self.entries.get(str(path))
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return True, entry[2]
        return False, None

    def store(self, path: Path, stat: os.stat_result, error: str | None) -> None:
        self.entries[str(path)] = [stat.st_size, stat.st_mtime_ns, error]

    def save(self) -> None:
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries))
            tmp.replace(self.file)  # atomic: ranks / runs checking at once never see half a file
        except OSError as err:
            log.warning("could not write the image-check cache %s (%s)", self.file, err)


def _progress(total: int, desc: str, enabled: bool) -> Any:  # a rich Progress (lazy import)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        f"[bold]{desc}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )


def check_images(
    paths: Sequence[Path],
    cache_key: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "checking images",
) -> dict[Path, str]:
    """Decode every image of ``paths`` once; return ``{path: reason}`` for the bad ones.

    Args:
        paths: image files (duplicates are checked once).
        cache_key: name of the result cache (e.g. the label files' paths); ``None``: no cache.
            A cached result is used only while the file's size and mtime are unchanged.
        workers: decoding threads (default ``min(16, cpu count)``; PIL decodes without the GIL).
        progress: show a progress bar (on a terminal only).
        desc: label of the progress bar.
    """
    unique = list(dict.fromkeys(Path(p) for p in paths))
    cache = _Cache(cache_key)
    bad: dict[Path, str] = {}
    todo: list[tuple[Path, os.stat_result]] = []
    n_cached = 0
    for path in unique:
        try:
            stat = path.stat()
        except OSError:
            bad[path] = "missing"
            continue
        n_cached += 1
        hit, error = cache.lookup(path.resolve(), stat)
        if not hit:
            n_cached -= 1
            todo.append((path, stat))
        elif error is not None:
            bad[path] = error
    start = time.perf_counter()
    if todo:
        workers = workers or min(16, os.cpu_count() or 1)
        with _progress(len(todo), desc, progress) as bar, ThreadPoolExecutor(workers) as pool:
            task = bar.add_task(desc, total=len(todo))
            for (path, stat), error in zip(
                todo, pool.map(image_error, [p for p, _ in todo]), strict=True
            ):
                cache.store(path.resolve(), stat, error)
                if error is not None:
                    bad[path] = error
                bar.advance(task)
        cache.save()
    log.info(
        "%s: %d images, %d decoded in %.1f s, %d from the cache, %d bad",
        desc, len(unique), len(todo), time.perf_counter() - start, n_cached, len(bad),
    )  # fmt: skip
    return bad


def _where(record: Record) -> str:
    return record.source or str(record.image)


def _listed(items: Sequence[str]) -> str:
    more = f" ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return "; ".join(items[:MAX_LISTED]) + more


@dataclass
class SplitReport:
    """What :func:`check_records` found in one split.

    Attributes:
        split: the split's name (``"train"``, ``"val"``, ``"test"``).
        records: the records to use: duplicates dropped, bad images dropped if asked.
        n_rows: records before dropping anything.
        duplicates: ``(kept, dropped)`` pairs of identical rows (same image, same labels).
        conflicts: ``(first, second)`` rows of the same image with different labels.
        empty: records without any label (empty label cell).
        bad_images: ``(record, reason)`` of missing or unreadable images.
        skipped_bad: bad images were dropped (``skip_bad_images``) rather than reported as errors.
        empty_allowed: empty label cells are kept as all-negative images.
    """

    split: str
    records: list[Record]
    n_rows: int
    duplicates: list[tuple[Record, Record]] = field(default_factory=list)
    conflicts: list[tuple[Record, Record]] = field(default_factory=list)
    empty: list[Record] = field(default_factory=list)
    bad_images: list[tuple[Record, str]] = field(default_factory=list)
    skipped_bad: bool = False
    empty_allowed: bool = False
    images_checked: bool = False

    def errors(self) -> list[str]:
        """One message per kind of error, naming files, lines and the key that changes it."""
        out = []
        if self.bad_images and not self.skipped_bad:
            items = [f"{_where(r)}: {r.image} ({why})" for r, why in self.bad_images]
            out.append(
                f"{self.split}: {len(items)} of {self.n_rows} images are missing or unreadable: "
                f"{_listed(items)}. Fix the files or the paths (relative paths are resolved "
                "against data.image_root), or set data.skip_bad_images=true to drop them"
            )
        if self.empty and not self.empty_allowed:
            items = [_where(r) for r in self.empty]
            out.append(
                f"{self.split}: {len(items)} rows have an empty label cell: {_listed(items)}. "
                "Fill in their labels, or set data.allow_empty_labels=true to keep them as "
                "images without any positive label"
            )
        if self.conflicts:
            items = [f"{_where(a)} {list(a.labels)} vs {_where(b)} {list(b.labels)}"
                     for a, b in self.conflicts]  # fmt: skip
            out.append(
                f"{self.split}: {len(items)} images are listed twice with different labels: "
                f"{_listed(items)}. Merge each image's labels into one row"
            )
        return out

    def warnings(self) -> list[str]:
        """Harmless findings (duplicates dropped, bad images skipped, empty rows kept)."""
        out = []
        if self.duplicates:
            items = [f"{_where(b)} repeats {_where(a)}" for a, b in self.duplicates]
            out.append(
                f"{self.split}: dropped {len(items)} duplicate rows (same image and labels): "
                f"{_listed(items)}"
            )
        if self.bad_images and self.skipped_bad:
            items = [f"{r.image} ({why})" for r, why in self.bad_images]
            out.append(
                f"{self.split}: data.skip_bad_images=true dropped {len(items)} of {self.n_rows} "
                f"images: {_listed(items)}"
            )
        if self.empty and self.empty_allowed:
            out.append(
                f"{self.split}: {len(self.empty)} rows without labels kept as all-negative images "
                f"(data.allow_empty_labels=true): {_listed([_where(r) for r in self.empty])}"
            )
        return out

    def summary(self) -> str:
        """One line: rows, images kept, what was dropped."""
        bits = [f"{self.split}: {self.n_rows} rows, {len(self.records)} used"]
        if self.duplicates:
            bits.append(f"{len(self.duplicates)} duplicates dropped")
        if self.bad_images:
            bits.append(f"{len(self.bad_images)} bad images")
        if self.empty:
            bits.append(f"{len(self.empty)} without labels")
        if self.conflicts:
            bits.append(f"{len(self.conflicts)} conflicting rows")
        if not self.images_checked:
            bits.append("images not checked (data.check_images=false)")
        return ", ".join(bits)


def _dedupe(records: Sequence[Record]) -> tuple[list[Record], list, list]:
    first: dict[Path, Record] = {}
    kept, duplicates, conflicts = [], [], []
    for r in records:
        seen = first.get(r.image)
        if seen is None:
            first[r.image] = r
            kept.append(r)
        elif set(seen.labels) == set(r.labels):
            duplicates.append((seen, r))
        else:
            conflicts.append((seen, r))
    return kept, duplicates, conflicts


def check_records(
    split: str,
    records: Sequence[Record],
    images: bool = True,
    skip_bad_images: bool = False,
    allow_empty_labels: bool = False,
    check_empty_labels: bool = True,
    cache_key: str | None = None,
    progress: bool = True,
) -> SplitReport:
    """Check one split's records (see the module docstring); nothing is raised here.

    Args:
        split: name used in the messages.
        records: the split's records, in file order.
        images: decode every image (:func:`check_images`). With ``skip_bad_images`` the images
            are checked even if ``images`` is False (to know which to drop).
        skip_bad_images: drop bad images from ``records`` (a warning) instead of an error.
        allow_empty_labels: records without labels are fine (warning) instead of an error.
        check_empty_labels: look for empty label cells at all (False for sources such as COCO,
            where an image without a vocabulary label is part of the protocol).
        cache_key, progress: see :func:`check_images`.

    Returns:
        A :class:`SplitReport`; ``report.errors()`` is empty if the split is usable.
    """
    kept, duplicates, conflicts = _dedupe(records)
    report = SplitReport(
        split, kept, len(records), duplicates, conflicts,
        empty=[r for r in kept if not r.labels] if check_empty_labels else [],
        skipped_bad=skip_bad_images, empty_allowed=allow_empty_labels,
        images_checked=images or skip_bad_images,
    )  # fmt: skip
    if report.images_checked and kept:
        bad = check_images(
            [r.image for r in kept], cache_key=cache_key, progress=progress,
            desc=f"checking {split} images",
        )  # fmt: skip
        report.bad_images = [(r, bad[r.image]) for r in kept if r.image in bad]
        if skip_bad_images:
            report.records = [r for r in kept if r.image not in bad]
    return report


def overlapping_images(splits: Mapping[str, Sequence[Record]]) -> list[str]:
    """Warnings for images that occur in two splits (``"train and test share 3 images: ..."``)."""
    names = list(splits)
    sets = {s: {r.image for r in splits[s]} for s in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sorted(sets[a] & sets[b])
            if shared:
                out.append(
                    f"{a} and {b} share {len(shared)} images (results on {b} are optimistic): "
                    f"{_listed([str(p) for p in shared])}"
                )
    return out


def raise_or_warn(reports: Iterable[SplitReport], extra_warnings: Sequence[str] = ()) -> None:
    """Log every warning of ``reports``; raise one :class:`DataCheckError` with all errors."""
    reports = list(reports)
    for message in [w for r in reports for w in r.warnings()] + list(extra_warnings):
        log.warning("%s", message)
    errors = [e for r in reports for e in r.errors()]
    if errors:
        raise DataCheckError(
            "the data checks found problems before training (python -m ramlico.data.check "
            "<same arguments> lists them again):\n  - " + "\n  - ".join(errors)
        )


# ---------------------------------------------------------------------------------- command
def _check_files(files: Sequence[str], image_root: str | None) -> list[SplitReport]:
    from ramlico.data.records import read_any_label_file

    reports = []
    for file in files:
        root = Path(image_root) if image_root else None
        records = read_any_label_file(Path(file), root)
        reports.append(check_records(Path(file).name, records, cache_key=str(Path(file).resolve())))
    return reports


def _check_config(overrides: Sequence[str], config_name: str) -> list[SplitReport]:
    import hydra
    from hydra import compose, initialize_config_dir

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(version_base="1.3", config_dir=config_dir):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    from ramlico.data.base import RamlicoDataModule

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    if not isinstance(datamodule, RamlicoDataModule):
        raise SystemExit(f"{cfg.data._target_} is not a ramlico datamodule (no data checks)")
    datamodule.prepare_data()
    return datamodule.check_data(progress=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ramlico.data.check`` (see the module docstring); returns the exit status."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(
        prog="python -m ramlico.data.check",
        description="Check a data configuration (Hydra overrides, as for train.py) or label "
        "files (.csv/.jsonl/.json): missing or corrupt images, encodings, empty label cells, "
        "duplicate rows, images shared between splits.",
    )
    parser.add_argument("args", nargs="*", help="overrides (experiment=... data.root=...) or files")
    parser.add_argument("--image-root", help="folder of relative image paths (label files only)")
    parser.add_argument("--config-name", default="train", help="root config (train or eval)")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = [a for a in ns.args if "=" not in a]
    overrides = [a for a in ns.args if "=" in a]
    try:
        if files:
            reports = _check_files(files, ns.image_root)
        else:
            reports = _check_config(overrides, ns.config_name)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    splits = {r.split: r.records for r in reports}
    for line in [r.summary() for r in reports]:
        print(line)
    for message in [w for r in reports for w in r.warnings()] + overlapping_images(splits):
        print(f"warning: {message}")
    errors = [e for r in reports for e in r.errors()]
    for message in errors:
        print(f"error: {message}")
    print("ok: no problems found" if not errors else f"{len(errors)} problem(s) found")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
