"""Single-label classification data for zero-shot evaluation (LaZSL, OTFusion, CLIP).

Sources:

* ``folder``: an ImageFolder tree ``root/<class folder>/<image>``; class folders sorted. Readable
  class names come from ``class_names_file`` when given: either one name per line in folder order,
  or ``<folder> <name words...>`` lines (ImageNet's ``n01440764 tench``); otherwise the folder
  name with ``_`` replaced by spaces. This covers ImageNet val (after the usual valprep into
  class folders), CUB-200, Oxford Pets, Food-101, Places365, ImageNet-V2/-R/-Sketch/-A.
* ``generated``: one coloured shape per image, class = ``"<colour> <shape>"`` (20 classes),
  written once as an ImageFolder tree under ``root`` and reused (no download).
* ``dataset=<name>`` (overrides ``source``): a standard test set in its distributed layout under
  ``root`` (``imagenet``, ``imagenet_v2``, ``imagenet_sketch``, ``imagenet_r``, ``imagenet_a``,
  ``cub``, ``pets``, ``food101``, ``places365``; :mod:`ramlico.data.named_sets`), with class
  names from the dataset's own files or ramlico's bundled ImageNet list.

Samples are ``(image, class index, dataset index)``. The image is decoded as stored (no mode
conversion) and handed to the transform, which owns every pixel operation. The zero-shot methods
supply their backbone's own transform (:meth:`ClassificationDataModule.set_transform`, called by
``RamlicoModule.setup``); ``image_size``/``mean``/``std`` are the fallback for other models. A
transform with ``uses_index = True`` is called ``transform(image, index)`` (LaZSL seeds each
image's crops from its dataset index). Under DDP the test loader gives every image to exactly one
rank (:func:`ramlico.utils.distributed.eval_sampler`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Compose

from ramlico.data.generated import GENERATED_SEEN, GENERATED_UNSEEN, draw_scene
from ramlico.data.named_sets import list_named_datasets, read_named_dataset
from ramlico.data.preprocess import ConvertRGB
from ramlico.data.transforms import CLIP_MEAN, CLIP_STD, build_eval_transform
from ramlico.utils import get_logger
from ramlico.utils.distributed import eval_sampler

__all__ = [
    "ClassificationDataModule",
    "ClassificationDataset",
    "collate_samples",
    "make_generated_classification",
    "read_image_folder",
]

log = get_logger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG", ".JPG", ".PNG"}
GENERATED_CLASSES: tuple[str, ...] = tuple(sorted(GENERATED_SEEN + GENERATED_UNSEEN))


def _class_names(folders: Sequence[str], names_file: Path | None) -> list[str]:
    if names_file is None:
        return [f.replace("_", " ") for f in folders]
    if not names_file.is_file():
        raise FileNotFoundError(f"class_names_file not found: {names_file}")
    lines = [ln.strip() for ln in names_file.read_text().splitlines() if ln.strip()]
    first = {ln.split(maxsplit=1)[0]: ln for ln in lines}
    if all(f in first for f in folders) and all(" " in first[f] for f in folders):
        return [first[f].split(maxsplit=1)[1] for f in folders]
    if len(lines) != len(folders):
        raise ValueError(
            f"{names_file}: {len(lines)} names for {len(folders)} class folders; give one name "
            "per line in sorted folder order, or '<folder> <name>' lines"
        )
    return lines


def _replacement_names(names_file: Path, count: int) -> list[str]:
    if not names_file.is_file():
        raise FileNotFoundError(f"class_names_file not found: {names_file}")
    lines = [ln.strip() for ln in names_file.read_text().splitlines() if ln.strip()]
    if len(lines) != count:
        raise ValueError(
            f"{names_file}: {len(lines)} names for a dataset of {count} classes; give one name "
            "per line in the dataset's label order"
        )
    return lines


def read_image_folder(
    root: Path, class_names_file: Path | None = None
) -> tuple[list[tuple[Path, int]], list[str]]:
    """``(samples, class_names)`` of an ImageFolder tree; ``samples[i] = (path, class index)``.

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
        files = sorted(p for p in (root / folder).iterdir() if p.suffix in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(
                f"class folder {root / folder} has no images ({sorted(IMAGE_SUFFIXES)})"
            )
        samples.extend((p, idx) for p in files)
    return samples, _class_names(folders, class_names_file)


def decode_image(path: str | Path) -> Image.Image:
    """The image file decoded as stored (its own mode); unreadable files raise with the path."""
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


class ClassificationDataset(Dataset[tuple[Any, ...]]):
    """``(transform(image), class index)`` or, with ``with_index``, ``(..., dataset index)``.

    Unreadable images raise with their path.

    Args:
        samples: ``(path, class index)`` pairs.
        transform: PIL image -> model input; called ``transform(image, index)`` when it has
            ``uses_index = True``.
        with_index: also return the dataset index (zero-shot evaluation).
        convert_rgb: convert to RGB on load; ``False`` hands the image over as stored (its own
            mode) and leaves the conversion to the transform (the backbones' transforms convert
            after resizing and cropping, as the reference pipelines do).
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        transform: Callable[..., Any],
        with_index: bool = False,
        convert_rgb: bool = True,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.with_index = with_index
        self.convert_rgb = convert_rgb

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[Any, ...]:
        path, label = self.samples[idx]
        image = decode_image(path)
        if self.convert_rgb:
            image = image.convert("RGB")
        if getattr(self.transform, "uses_index", False):
            x = self.transform(image, idx)
        else:
            x = self.transform(image)
        return (x, label, idx) if self.with_index else (x, label)


def _collate(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # NamedTuple: field by field
        return type(first)(*(_collate(list(v)) for v in zip(*values, strict=True)))
    if isinstance(first, torch.Tensor):
        if all(v.shape == first.shape for v in values):
            return torch.stack(values)
        return list(values)  # e.g. full-resolution originals of different sizes
    return torch.as_tensor(values)


def collate_samples(batch: list[tuple[Any, int, int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Batch ``(x, label, index)`` samples: tensors are stacked when their shapes agree and kept
    as a list otherwise; NamedTuples of tensors are collated field by field."""
    xs, labels, index = zip(*batch, strict=True)
    return _collate(list(xs)), torch.as_tensor(labels), torch.as_tensor(index)


def make_generated_classification(
    root: Path, n_per_class: int = 8, image_size: int = 64, seed: int = 0
) -> Path:
    """Write (once) an ImageFolder tree of single shapes, one folder per generated class.

    Returns ``root``. The cache is reused when ``root/manifest.json`` holds the same parameters.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    root = Path(root)
    manifest = {"n_per_class": n_per_class, "image_size": image_size, "seed": seed, "version": 1}
    mpath = root / "manifest.json"
    if mpath.is_file() and json.loads(mpath.read_text()) == manifest:
        return root
    rng = np.random.default_rng(seed)
    for name in GENERATED_CLASSES:
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            image, _ = draw_scene([name], image_size, rng)
            image.save(folder / f"{i:04d}.png")
    mpath.write_text(json.dumps(manifest))
    log.info("wrote generated classification set (%d classes) to %s", len(GENERATED_CLASSES), root)
    return root


class ClassificationDataModule(LightningDataModule):
    """One test split of single-label images for zero-shot evaluation.

    Args:
        source: ``"folder"`` or ``"generated"``.
        root: the ImageFolder root (or the cache folder of the generated set).
        class_names_file: optional readable class names (see module docstring).
        image_size, mean, std: fallback preprocessing (squash-resize, normalise) for models
            without their own; zero-shot methods replace it with their backbone's transform.
        batch_size, num_workers: loader settings.
        generated: ``make_generated_classification`` keyword arguments.
        dataset: a standard set read from its distributed layout under ``root``
            (:func:`ramlico.data.named_sets.list_named_datasets`); ``None`` = use ``source``.
            ``class_names_file`` then replaces the set's names (one per line, label order).
        split: the named set's split (``cub``: test/train/all, ``pets``: test/trainval,
            ``food101``: test/train); ``None`` = the evaluated one.
    """

    eval_splits = ["test"]
    task = "multiclass"

    def __init__(
        self,
        source: str = "generated",
        root: str = "data/generated_cls",
        class_names_file: str | None = None,
        image_size: int = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        batch_size: int = 64,
        num_workers: int = 0,
        generated: dict | None = None,
        dataset: str | None = None,
        split: str | None = None,
    ) -> None:
        super().__init__()
        if source not in ("folder", "generated"):
            raise ValueError(f"source must be 'folder' or 'generated', got {source!r}")
        if dataset is not None and dataset not in list_named_datasets():
            raise ValueError(
                f"data.dataset={dataset!r} is not a known set; available: "
                f"{list_named_datasets()} (or dataset=null with source=folder for any ImageFolder)"
            )
        if dataset is not None:
            source = "folder"
        self.save_hyperparameters(logger=False)
        self.dataset: ClassificationDataset | None = None
        self.source = source
        self.class_names: list[str] = list(GENERATED_CLASSES) if source == "generated" else []
        self.transform: Callable[..., Any] = Compose(
            [ConvertRGB(), build_eval_transform(image_size, mean, std)]
        )

    def set_transform(self, transform: Callable[..., Any]) -> None:
        """Use ``transform`` (a model's own preprocessing) instead of the ``image_size``/``mean``/
        ``std`` fallback, for datasets built now and later."""
        self.transform = transform
        if self.dataset is not None:
            self.dataset.transform = transform

    def prepare_data(self) -> None:
        if self.source == "generated":
            make_generated_classification(Path(self.hparams.root), **(self.hparams.generated or {}))

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if self.source == "generated":
            self.prepare_data()
        names_file = Path(hp.class_names_file) if hp.class_names_file else None
        if hp.dataset is not None:
            samples, names = read_named_dataset(hp.dataset, hp.root, hp.split)
            if names_file is not None:
                names = _replacement_names(names_file, len(names))
        else:
            samples, names = read_image_folder(Path(hp.root), names_file)
        if self.source == "generated":
            names = list(GENERATED_CLASSES)
        self.class_names = names
        self.dataset = ClassificationDataset(
            samples, self.transform, with_index=True, convert_rgb=False
        )

    def label_names(self, split: str = "test") -> list[str]:
        if not self.class_names:
            self.setup()
        return list(self.class_names)

    def test_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup()
        hp = self.hparams
        return DataLoader(
            self.dataset,
            batch_size=hp.batch_size,
            shuffle=False,
            sampler=eval_sampler(self.dataset),
            num_workers=hp.num_workers,
            collate_fn=collate_samples,
        )
