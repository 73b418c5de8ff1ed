"""Standard zero-shot classification test sets read from their on-disk layout as distributed.

Each reader takes the extracted dataset root (no download) and returns ``(samples, class_names)``
with ``samples[i] = (image path, class index)`` and the class names in the label order the LaZSL
descriptor files use (docs/zero_shot.md, "Class names"):

============== =================================================================================
``imagenet``   ``root/<wnid>/*.JPEG`` (val after the usual valprep into class folders), or the
               flat ``ILSVRC2012_val_*.JPEG`` with Kaggle's ``LOC_val_solution.csv``; 1000
               classes, bundled CLIP-style names (:mod:`ramlico.data.imagenet_info`).
``imagenet_v2`` ``root/<0..999>/*.jpeg`` (``imagenetv2-matched-frequency-format-val``): the folder
               name is the ImageNet class index.
``imagenet_sketch`` ``root/<wnid>/*`` or ``root/sketch/<wnid>/*``; 1000 classes.
``imagenet_r`` ``root/<wnid>/*`` (``imagenet-r``); 200 classes, the bundled WNID subset, label =
``imagenet_a`` position in that sorted list (= ascending ImageNet index).
``cub``        ``CUB_200_2011/``: ``images/``, ``classes.txt``, ``images.txt``,
               ``image_class_labels.txt``, ``train_test_split.txt`` (test = ``0``).
``pets``       ``oxford-iiit-pet/``: ``images/*.jpg``, ``annotations/{test,trainval}.txt``.
``food101``    ``food-101/``: ``images/<class>/<id>.jpg``, ``meta/{test,train}.txt``,
               ``meta/classes.txt``.
``places365``  ``root/``: ``places365_val.txt``, ``categories_places365.txt`` and the images in
               ``val_large/`` (reference, full resolution) or ``val_256/``; names in the
               descriptor-key form ``apartment_building-outdoor``.
============== =================================================================================

A missing file raises :class:`FileNotFoundError` naming the file and the expected layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ramlico.data.imagenet_info import (
    imagenet_class_names,
    imagenet_subset_wnids,
    imagenet_wnids,
)

__all__ = ["NAMED_DATASETS", "cub_class_name", "list_named_datasets", "read_named_dataset"]

Samples = list[tuple[Path, int]]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _need(path: Path, dataset: str, layout: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset}: {path} not found. Expected layout under data.root: {layout}. Point "
            "data.root at the extracted dataset folder (see docs/zero_shot.md, 'Real datasets')."
        )
    return path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _class_folders(root: Path, dataset: str, layout: str) -> list[str]:
    _need(root, dataset, layout)
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{dataset}: {root} has no class folders; expected {layout}")
    return folders


def _wnid_folders(root: Path, dataset: str, wnids: list[str], layout: str) -> Samples:
    index = {w: i for i, w in enumerate(wnids)}
    folders = _class_folders(root, dataset, layout)
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise ValueError(
            f"{dataset}: class folders {unknown[:5]} ({len(unknown)}) in {root} are not WNIDs of "
            f"this dataset's {len(wnids)} classes; expected {layout}"
        )
    return [(p, index[f]) for f in folders for p in _images(root / f)]


def _imagenet_flat_val(root: Path, layout: str) -> Samples:
    """Flat ``ILSVRC2012_val_*.JPEG`` files labelled by Kaggle's ``LOC_val_solution.csv``."""
    # Kaggle's download keeps the CSV four levels above ILSVRC/Data/CLS-LOC/val.
    candidates = [d / "LOC_val_solution.csv" for d in (root, *list(root.parents)[:4])]
    csv_path = next((p for p in candidates if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(
            f"imagenet: {root} holds flat val images but LOC_val_solution.csv not found in it or "
            f"its 4 parent folders; expected {layout}"
        )
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    labels = {}
    for ln in _lines(csv_path)[1:]:  # header: ImageId,PredictionString
        image_id, prediction = ln.split(",", 1)
        labels[image_id] = index[prediction.split()[0]]
    files = _images(root)
    unlabelled = [p.name for p in files if p.stem not in labels]
    if unlabelled:
        raise ValueError(
            f"imagenet: {csv_path} has no label for {unlabelled[:5]} ({len(unlabelled)})"
        )
    return [(p, labels[p.stem]) for p in files]


def read_imagenet(root: Path) -> tuple[Samples, list[str]]:
    layout = (
        "<root>/<wnid>/<image>.JPEG (val sorted into 1000 WNID class folders), or flat "
        "<root>/ILSVRC2012_val_*.JPEG with LOC_val_solution.csv in <root> or above"
    )
    _need(root, "imagenet", layout)
    if not any(p.is_dir() for p in root.iterdir()) and _images(root):
        return _imagenet_flat_val(root, layout), imagenet_class_names()
    return _wnid_folders(root, "imagenet", imagenet_wnids(), layout), imagenet_class_names()


def read_imagenet_sketch(root: Path) -> tuple[Samples, list[str]]:
    root = root / "sketch" if (root / "sketch").is_dir() else root
    layout = "<root>/<wnid>/<image> or <root>/sketch/<wnid>/<image>"
    return _wnid_folders(root, "imagenet_sketch", imagenet_wnids(), layout), imagenet_class_names()


def read_imagenet_v2(root: Path) -> tuple[Samples, list[str]]:
    layout = "<root>/<class index 0..999>/<image>.jpeg (imagenetv2-*-format-val)"
    folders = _class_folders(root, "imagenet_v2", layout)
    bad = [f for f in folders if not (f.isdigit() and 0 <= int(f) < 1000)]
    if bad:
        raise ValueError(f"imagenet_v2: folders {bad[:5]} in {root} are not indices 0..999")
    samples = [(p, int(f)) for f in folders for p in _images(root / f)]
    return samples, imagenet_class_names()


def _subset_reader(subset: str) -> Callable[[Path], tuple[Samples, list[str]]]:
    def read(root: Path) -> tuple[Samples, list[str]]:
        wnids = imagenet_subset_wnids(subset)
        names = dict(zip(imagenet_wnids(), imagenet_class_names(), strict=True))
        layout = f"<root>/<wnid>/<image> with the 200 {subset} WNID folders"
        return _wnid_folders(root, subset, wnids, layout), [names[w] for w in wnids]

    read.__doc__ = f"{subset}: 200 WNID folders, names from the ImageNet list."
    return read


def cub_class_name(folder: str) -> str:
    """CUB folder -> descriptor-file class name (docs/zero_shot.md, "Class names").

    Drop the numeric prefix, ``_`` -> space; with three or more words, hyphen-join all words but
    the last.

    Example:
        >>> cub_class_name("001.Black_footed_Albatross")
        'Black-footed Albatross'
        >>> cub_class_name("002.Laysan_Albatross")
        'Laysan Albatross'
    """
    words = re.sub(r"^\d+\.", "", folder).split("_")
    if len(words) >= 3:
        return "-".join(words[:-1]) + " " + words[-1]
    return " ".join(words)


def read_cub(root: Path, split: str = "test") -> tuple[Samples, list[str]]:
    layout = (
        "<root>/{images/<NNN.Class>/<image>.jpg, classes.txt, images.txt, "
        "image_class_labels.txt, train_test_split.txt} (the extracted CUB_200_2011 folder)"
    )
    if split not in ("test", "train", "all"):
        raise ValueError(f"cub: split must be 'test', 'train' or 'all', got {split!r}")
    names = ("classes.txt", "images.txt", "image_class_labels.txt", "train_test_split.txt")
    files = {n: _need(root / n, "cub", layout) for n in names}
    classes = [ln.split(maxsplit=1) for ln in _lines(files["classes.txt"])]
    ids = [int(c[0]) for c in classes]
    if ids != list(range(1, len(ids) + 1)):
        raise ValueError(f"cub: {files['classes.txt']} must number classes 1..K in order")
    images = dict(ln.split(maxsplit=1) for ln in _lines(files["images.txt"]))
    labels = dict(ln.split() for ln in _lines(files["image_class_labels.txt"]))
    is_train = dict(ln.split() for ln in _lines(files["train_test_split.txt"]))
    want = {"test": {"0"}, "train": {"1"}, "all": {"0", "1"}}[split]
    samples = [
        (_need(root / "images", "cub", layout) / rel, int(labels[i]) - 1)
        for i, rel in images.items()
        if is_train[i] in want
    ]
    return samples, [cub_class_name(c[1]) for c in classes]


def read_pets(root: Path, split: str = "test") -> tuple[Samples, list[str]]:
    layout = "<root>/{images/<Breed>_<n>.jpg, annotations/test.txt, annotations/trainval.txt}"
    if split not in ("test", "trainval"):
        raise ValueError(f"pets: split must be 'test' or 'trainval', got {split!r}")
    ann = _need(root / "annotations" / f"{split}.txt", "pets", layout)
    images = _need(root / "images", "pets", layout)
    samples: Samples = []
    names: dict[int, str] = {}
    for ln in _lines(ann):
        if ln.startswith("#"):
            continue
        stem, class_id = ln.split()[:2]
        label = int(class_id) - 1
        names[label] = stem.rsplit("_", 1)[0].replace("_", " ")
        samples.append((images / f"{stem}.jpg", label))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"pets: {ann} does not cover class ids 1..{len(names)}")
    return samples, [names[k] for k in range(len(names))]


def read_food101(root: Path, split: str = "test") -> tuple[Samples, list[str]]:
    layout = "<root>/{images/<class>/<id>.jpg, meta/classes.txt, meta/test.txt, meta/train.txt}"
    if split not in ("test", "train"):
        raise ValueError(f"food101: split must be 'test' or 'train', got {split!r}")
    classes = _lines(_need(root / "meta" / "classes.txt", "food101", layout))
    index = {c: i for i, c in enumerate(classes)}
    listing = _need(root / "meta" / f"{split}.txt", "food101", layout)
    images = _need(root / "images", "food101", layout)
    samples = [(images / f"{rel}.jpg", index[rel.split("/")[0]]) for rel in _lines(listing)]
    return samples, [c.replace("_", " ") for c in classes]


def places365_class_name(category: str) -> str:
    """``/a/apartment_building/outdoor`` -> ``apartment_building-outdoor``: the form of the
    DCLIP/LaZSL descriptor keys (``_`` kept, the sub-category joined by ``-``; sentences turn
    ``_`` into spaces).

    Example:
        >>> places365_class_name("/a/apartment_building/outdoor")
        'apartment_building-outdoor'
    """
    return re.sub(r"^/[a-z]/", "", category).replace("/", "-")


def read_places365(root: Path) -> tuple[Samples, list[str]]:
    layout = "<root>/{categories_places365.txt, places365_val.txt, val_large/ or val_256/}"
    cats = [
        ln.split() for ln in _lines(_need(root / "categories_places365.txt", "places365", layout))
    ]
    order = sorted(cats, key=lambda c: int(c[1]))
    if [int(c[1]) for c in order] != list(range(len(order))):
        raise ValueError("places365: categories_places365.txt must number classes 0..K-1")
    listing = _need(root / "places365_val.txt", "places365", layout)
    folder = next((root / d for d in ("val_large", "val_256") if (root / d).is_dir()), None)
    if folder is None:
        raise FileNotFoundError(
            f"places365: neither {root / 'val_large'} nor {root / 'val_256'} exists; expected "
            f"{layout}"
        )
    samples = [
        (folder / name, int(label)) for name, label in (ln.split() for ln in _lines(listing))
    ]
    return samples, [places365_class_name(c[0]) for c in order]


NAMED_DATASETS: dict[str, Callable[..., tuple[Samples, list[str]]]] = {
    "imagenet": read_imagenet,
    "imagenet_v2": read_imagenet_v2,
    "imagenet_sketch": read_imagenet_sketch,
    "imagenet_r": _subset_reader("imagenet_r"),
    "imagenet_a": _subset_reader("imagenet_a"),
    "cub": read_cub,
    "pets": read_pets,
    "food101": read_food101,
    "places365": read_places365,
}
_WITH_SPLIT = {"cub", "pets", "food101"}


def list_named_datasets() -> list[str]:
    """Names accepted by :func:`read_named_dataset` (``data.dataset=...``)."""
    return sorted(NAMED_DATASETS)


def read_named_dataset(
    name: str, root: str | Path, split: str | None = None
) -> tuple[Samples, list[str]]:
    """``(samples, class_names)`` of a standard test set from its extracted ``root``.

    Args:
        name: one of :func:`list_named_datasets`.
        root: the extracted dataset folder (see the module docstring for each layout).
        split: ``cub``: ``test``/``train``/``all``; ``pets``: ``test``/``trainval``; ``food101``:
            ``test``/``train``; ``None`` = the evaluated split (test/val). Others take no split.

    Raises:
        ValueError: unknown name, a split the set does not have, or inconsistent files.
        FileNotFoundError: a missing file or folder (named in the message, with the layout).
    """
    if name not in NAMED_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {list_named_datasets()}")
    reader = NAMED_DATASETS[name]
    if split is not None and name not in _WITH_SPLIT:
        raise ValueError(f"dataset {name!r} has one evaluated split; drop split={split!r}")
    args = {} if split is None else {"split": split}
    samples, names = reader(Path(root), **args)
    if not samples:
        raise ValueError(f"{name}: no images found under {root}")
    return samples, names
