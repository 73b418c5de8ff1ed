"""Helpers of the sources that read a data set's files as distributed: named missing files,
text listings, class folders keyed by WNID."""

from __future__ import annotations

from pathlib import Path

from ramlico.data.image_folder import list_images

__all__ = ["FolderSplits", "class_folders", "lines", "need", "wnid_folders"]

Samples = list[tuple[Path, int]]


def need(path: Path, dataset: str, layout: str) -> Path:
    """``path`` if it exists, else ``FileNotFoundError`` naming it and the expected layout."""
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset}: {path} not found. Expected layout under data.root: {layout}. Point "
            "data.root at the extracted dataset folder (see docs/zero_shot.md, 'Real datasets')."
        )
    return path


class FolderSplits:
    """Mixin of sources read from folder trees: ``test`` is ``root/<test_dir>`` (or ``root``),
    ``train`` is ``root/<train_dir>`` when one is given (else the source has no training split).

    Put it before the source base class: ``class MySource(FolderSplits, SingleLabelSource)``.
    """

    def __init__(
        self, root: str | Path, train_dir: str | None = None, test_dir: str | None = None
    ) -> None:
        super().__init__(root)  # type: ignore[call-arg]
        base = Path(root)
        self.dirs = {"test": base / test_dir if test_dir else base}
        if train_dir:
            self.dirs = {"train": base / train_dir, **self.dirs}
        self.splits = tuple(self.dirs)

    def cache_key(self, split: str) -> str:
        return str(self.dirs[split].resolve())


def lines(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped."""
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def class_folders(root: Path, dataset: str, layout: str) -> list[str]:
    """Sorted sub-folder names of ``root`` (at least one)."""
    need(root, dataset, layout)
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{dataset}: {root} has no class folders; expected {layout}")
    return folders


def wnid_folders(root: Path, dataset: str, wnids: list[str], layout: str) -> Samples:
    """``(image, index of its folder's WNID in wnids)`` for every image under ``root/<wnid>/``."""
    index = {w: i for i, w in enumerate(wnids)}
    folders = class_folders(root, dataset, layout)
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise ValueError(
            f"{dataset}: class folders {unknown[:5]} ({len(unknown)}) in {root} are not WNIDs of "
            f"this dataset's {len(wnids)} classes; expected {layout}"
        )
    return [(p, index[f]) for f in folders for p in list_images(root / f)]
