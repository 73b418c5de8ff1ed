"""Image files on disk: the one extension rule, the one folder scanner, decoding, class-name files.

* :func:`is_image` is the only test of "is this file an image": its suffix, case-insensitively,
  is one of :data:`IMAGE_SUFFIXES` (``.jpg``, ``.JPEG``, ``.Png`` ... all count).
* :func:`list_images` lists a folder's images (sorted); :func:`read_image_folder` reads an
  ImageFolder tree ``root/<class folder>/<image>`` (class folders sorted = label order).
* :func:`decode_image` opens a file as stored (its own mode; the transform converts).
* :func:`read_class_names_file` reads readable class names: one per line in label order, or
  ``<key> <name words...>`` lines (``n01440764 tench``) keyed by folder name / WNID.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "decode_image",
    "is_image",
    "list_images",
    "read_class_names_file",
    "read_image_folder",
]

#: Image file suffixes, lower case; :func:`is_image` compares case-insensitively.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def is_image(path: Path) -> bool:
    """Whether ``path`` names an image file by its suffix (case-insensitive).

    Example:
        >>> is_image(Path("a/ILSVRC2012_val_00000001.JPEG")), is_image(Path("notes.txt"))
        (True, False)
    """
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image(p))


def decode_image(path: str | Path) -> Image.Image:
    """The image file decoded as stored (its own mode); unreadable files raise with the path."""
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


def read_class_names_file(path: Path, keys: Sequence[str]) -> list[str]:
    """Readable names of the classes ``keys`` (label order) from a names file.

    The file holds either one name per line in label order, or ``<key> <name words...>`` lines
    that cover every key (any order; ImageNet's ``n01440764 tench``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: neither form fits (the counts are named).
    """
    if not path.is_file():
        raise FileNotFoundError(f"class_names_file not found: {path}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    first = {ln.split(maxsplit=1)[0]: ln for ln in lines}
    if all(k in first for k in keys) and all(" " in first[k] for k in keys):
        return [first[k].split(maxsplit=1)[1] for k in keys]
    if len(lines) != len(keys):
        raise ValueError(
            f"{path}: {len(lines)} names for {len(keys)} classes; give one name per line in "
            "label order (an ImageFolder's sorted class folders), or '<folder or WNID> <name>' "
            "lines"
        )
    return lines


def read_image_folder(
    root: Path, class_names_file: Path | None = None
) -> tuple[list[tuple[Path, int]], list[str]]:
    """``(samples, class_names)`` of an ImageFolder tree; ``samples[i] = (path, class index)``.

    Class folders are sorted (label order); names are ``class_names_file``'s
    (:func:`read_class_names_file`) or the folder names with ``_`` replaced by spaces.

    Raises:
        FileNotFoundError: ``root`` missing or without class folders.
        ValueError: a class folder without images, or a names file that does not fit.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder root not found: {root}")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{root} has no class folders (expected root/<class>/<image>)")
    samples: list[tuple[Path, int]] = []
    for idx, folder in enumerate(folders):
        files = list_images(root / folder)
        if not files:
            raise ValueError(
                f"class folder {root / folder} has no images (suffixes {sorted(IMAGE_SUFFIXES)}, "
                "any case)"
            )
        samples.extend((p, idx) for p in files)
    if class_names_file is not None:
        return samples, read_class_names_file(Path(class_names_file), folders)
    return samples, [f.replace("_", " ") for f in folders]
