"""Train/test single-label image classification data for supervised methods (LICO).

Sources (``source=``):

* ``cifar10`` / ``cifar100`` / ``svhn``: torchvision datasets under ``root`` (``download=true``
  fetches them once; offline, place the extracted archives there). SVHN ``svhn_extra=true``
  adds the 531,131 "extra" images to the training split (LICO's "full" SVHN).
* ``folder``: ImageFolder trees ``root/<train_dir>/<class>/...`` and ``root/<test_dir>/...``
  (ImageNet, CUB-200, Stanford Cars, FGVC-Aircraft, VGG Flowers after the usual conversion).
* ``generated``: the 20 coloured-shape classes of :mod:`ramlico.data.classification`, written
  once under ``root/train`` and ``root/test`` with different seeds (demo and tests).

Class names always come from the dataset, in label order (docs/lico.md, "Objective"): CIFAR-10
"airplane, automobile, bird, ...", SVHN "zero" ... "nine", ``_`` replaced by a space.

Limited labels: ``num_labels`` (total, spread evenly over the classes, as LICO's "CIFAR-10 40
labels" = 4 per class) or ``shots`` (k per class, fine-grained k-shot) selects a balanced,
seeded subset of the training split; training images of such a subset get additive Gaussian
noise ``N(0, limited_label_noise_std^2)`` after normalisation (LICO reference code).

Validation: ``val_fraction`` holds out a seeded part of the training split (before any limited-label
subset is drawn), evaluated with the test transform as split ``"val"`` (``val/val/top1``).
ImageFolder and generated images are decoded once before training (``check_images``, cached;
:mod:`ramlico.data.check`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torchvision.transforms import v2

from ramlico.data.check import check_records, raise_or_warn
from ramlico.data.classification import (
    GENERATED_CLASSES,
    ClassificationDataset,
    make_generated_classification,
    read_image_folder,
)
from ramlico.data.records import Record
from ramlico.data.sampling import ResumableTrainData, sample_seed
from ramlico.utils import get_logger

__all__ = [
    "DATASET_STATS",
    "SupervisedClassificationDataModule",
    "balanced_subset",
    "build_supervised_transform",
]

log = get_logger(__name__)
SOURCES = ("generated", "folder", "cifar10", "cifar100", "svhn")
PRESETS = ("cifar", "svhn", "imagenet", "basic", "none")
SVHN_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: per-dataset normalisation (LICO reference code; ImageNet standard)
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
    "svhn": ((0.4380, 0.4440, 0.4730), (0.1751, 0.1771, 0.1744)),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}


class _AddNoise(torch.nn.Module):
    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x)


def build_supervised_transform(
    preset: str,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    noise_std: float = 0.0,
) -> Callable[[Any], torch.Tensor]:
    """PIL image -> ``(3, S, S)`` float32 normalised tensor.

    Presets (train side; the eval side is resize + normalise, ``imagenet``: resize ``S/0.875``
    + centre crop ``S``):

    * ``cifar``: random crop ``S`` with 4 px zero padding + horizontal flip (LICO code);
    * ``svhn``: random crop with padding, no flip (digits are not flip-invariant);
    * ``imagenet``: RandomResizedCrop(S) + horizontal flip;
    * ``basic``: resize + horizontal flip;  ``none``: the eval transform.

    ``noise_std > 0`` adds ``N(0, noise_std^2)`` noise after normalisation (train only).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown train preset {preset!r}; choose one of {PRESETS}")
    head = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    tail: list[torch.nn.Module] = [v2.Normalize(list(mean), list(std))]
    if preset == "imagenet" and not train:
        body: list[Any] = [v2.Resize(round(image_size / 0.875), antialias=True),
                           v2.CenterCrop(image_size)]  # fmt: skip
    elif not train or preset == "none":
        body = [v2.Resize((image_size, image_size), antialias=True)]
    elif preset in ("cifar", "svhn"):
        body = [v2.Resize((image_size, image_size), antialias=True),
                v2.RandomCrop(image_size, padding=4)]  # fmt: skip
        if preset == "cifar":
            body.append(v2.RandomHorizontalFlip())
    elif preset == "imagenet":
        body = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        body = [v2.Resize((image_size, image_size), antialias=True), v2.RandomHorizontalFlip()]
    if train and noise_std > 0:
        tail.append(_AddNoise(noise_std))
    return v2.Compose(head + body + tail)


def balanced_subset(
    labels: Sequence[int], per_class: int, num_classes: int, seed: int
) -> list[int]:
    """Indices of ``per_class`` examples of every class, drawn without replacement (seeded).

    Raises:
        ValueError: a class has fewer than ``per_class`` examples.
    """
    labels_np = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels_np == c)
        if len(idx) < per_class:
            raise ValueError(
                f"class {c} has {len(idx)} training images, fewer than {per_class} per class; "
                "lower num_labels/shots"
            )
        chosen.extend(sorted(rng.choice(idx, size=per_class, replace=False).tolist()))
    return chosen


class _Relabelled(Dataset):
    """Wraps a torchvision dataset, returning ``(image, int label)``."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[idx]
        return image, int(label)


class SupervisedClassificationDataModule(ResumableTrainData, LightningDataModule):
    """Train and test splits of a single-label dataset (task ``multiclass``).

    Args:
        source: one of ``generated``, ``folder``, ``cifar10``, ``cifar100``, ``svhn``.
        root: dataset root (see module docstring).
        download: let torchvision download CIFAR/SVHN into ``root`` (needs internet).
        train_dir, test_dir: ImageFolder sub-folders for ``folder``.
        class_names_file: readable names for ``folder`` (see ``read_image_folder``).
        image_size: output size ``S``.
        mean, std: normalisation; ``None`` = the dataset's own (``DATASET_STATS``; ImageNet's
            for ``folder``/``generated``).
        train_preset: augmentation preset (``build_supervised_transform``).
        num_labels: total labelled training images (balanced over classes) or ``None``.
        shots: labelled images per class (k-shot) or ``None``; exclusive with ``num_labels``.
        subset_seed: seed of the labelled subset.
        limited_label_noise_std: training noise std when a subset is used (LICO code: 0.1).
        svhn_extra: add SVHN's "extra" split to the training data.
        batch_size, eval_batch_size, num_workers: loader settings.
        generated: ``make_generated_classification`` keyword arguments of the training split
            (the test split uses ``seed + 1`` and ``n_test_per_class``).
        n_test_per_class: test images per class of the generated set.
        val_fraction: hold out this fraction of the training split for validation (0: none).
        val_seed: seed of the held-out part.
        check_images: decode every image of ImageFolder / generated sources before training.
        skip_bad_images: drop missing / unreadable images (listed) instead of an error.
    """

    eval_splits = ["test"]
    task = "multiclass"

    def __init__(
        self,
        source: str = "generated",
        root: str = "data/generated_sup",
        download: bool = False,
        train_dir: str = "train",
        test_dir: str = "val",
        class_names_file: str | None = None,
        image_size: int = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        train_preset: str = "basic",
        num_labels: int | None = None,
        shots: int | None = None,
        subset_seed: int = 0,
        limited_label_noise_std: float = 0.1,
        svhn_extra: bool = False,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        generated: dict | None = None,
        n_test_per_class: int = 10,
        val_fraction: float = 0.0,
        val_seed: int = 0,
        check_images: bool = True,
        skip_bad_images: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if source not in SOURCES:
            raise ValueError(f"data.source={source!r} is not supported; choose one of {SOURCES}")
        if num_labels is not None and shots is not None:
            raise ValueError("set either data.num_labels (total) or data.shots (per class)")
        if train_preset not in PRESETS:
            raise ValueError(f"data.train_preset={train_preset!r}; choose one of {PRESETS}")
        self.save_hyperparameters(logger=False)
        self.class_names: list[str] = list(GENERATED_CLASSES) if source == "generated" else []
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def val_splits(self) -> list[str]:
        """``["val"]`` with ``val_fraction > 0``, else ``[]`` (no validation)."""
        return ["val"] if self.hparams.val_fraction > 0 else []

    # ------------------------------------------------------------------ helpers
    def _stats(self) -> tuple[Sequence[float], Sequence[float]]:
        hp = self.hparams
        key = hp.source if hp.source in DATASET_STATS else "imagenet"
        mean, std = DATASET_STATS[key]
        return hp.mean or mean, hp.std or std

    def _transforms(self, limited: bool) -> tuple[Callable, Callable]:
        hp = self.hparams
        mean, std = self._stats()
        noise = hp.limited_label_noise_std if limited else 0.0
        train = build_supervised_transform(hp.train_preset, hp.image_size, mean, std, True, noise)
        test = build_supervised_transform(hp.train_preset, hp.image_size, mean, std, False)
        return train, test

    def _torchvision(self, train_tf, test_tf) -> tuple[Dataset, Dataset, list[str], list[int]]:
        from torchvision import datasets

        hp = self.hparams
        root, dl = str(hp.root), hp.download
        try:
            if hp.source in ("cifar10", "cifar100"):
                cls = datasets.CIFAR10 if hp.source == "cifar10" else datasets.CIFAR100
                train = cls(root, train=True, transform=train_tf, download=dl)
                test = cls(root, train=False, transform=test_tf, download=dl)
                names = [n.replace("_", " ") for n in train.classes]
                labels = list(train.targets)
            else:
                train = datasets.SVHN(root, split="train", transform=train_tf, download=dl)
                labels = train.labels.tolist()
                if hp.svhn_extra:
                    extra = datasets.SVHN(root, split="extra", transform=train_tf, download=dl)
                    labels += extra.labels.tolist()
                    train = ConcatDataset([train, extra])
                test = datasets.SVHN(root, split="test", transform=test_tf, download=dl)
                names = list(SVHN_NAMES)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{hp.source} not found under data.root={root}: {exc}. Pass data.download=true "
                "(needs internet) or extract the official archives there."
            ) from exc
        return _Relabelled(train), _Relabelled(test), names, labels

    # ------------------------------------------------------------------ Lightning API
    def prepare_data(self) -> None:
        hp = self.hparams
        if hp.source == "generated":
            gen = dict(hp.generated or {})
            seed = int(gen.pop("seed", 0))
            make_generated_classification(Path(hp.root) / "train", seed=seed, **gen)
            gen["n_per_class"] = hp.n_test_per_class
            make_generated_classification(Path(hp.root) / "test", seed=seed + 1, **gen)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        limited = hp.num_labels is not None or hp.shots is not None
        train_tf, test_tf = self._transforms(limited)
        if hp.source in ("cifar10", "cifar100", "svhn"):
            train, test, names, labels = self._torchvision(train_tf, test_tf)
        else:
            if hp.source == "generated":
                self.prepare_data()
            tr_dir, te_dir = self._image_dirs()
            names_file = Path(hp.class_names_file) if hp.class_names_file else None
            tr_samples, names = read_image_folder(tr_dir, names_file)
            te_samples, te_names = read_image_folder(te_dir, names_file)
            if te_names != names:
                raise ValueError(f"{tr_dir} and {te_dir} have different class folders")
            if hp.source == "generated":
                names = list(GENERATED_CLASSES)
            tr_samples = self._checked(tr_samples, tr_dir)
            te_samples = self._checked(te_samples, te_dir)
            train = ClassificationDataset(tr_samples, train_tf)
            test = ClassificationDataset(te_samples, test_tf)
            labels = [label for _, label in tr_samples]
        if hp.val_fraction > 0:
            train, labels = self._hold_out(train, labels, test_tf)
        if limited:
            per_class = hp.shots
            if hp.num_labels is not None:
                if hp.num_labels % len(names):
                    raise ValueError(
                        f"data.num_labels={hp.num_labels} is not a multiple of the "
                        f"{len(names)} classes; use e.g. {len(names) * 4}"
                    )
                per_class = hp.num_labels // len(names)
            idx = balanced_subset(labels, per_class, len(names), hp.subset_seed)
            train = Subset(train, idx)
            log.info("labelled subset: %d per class, %d images", per_class, len(idx))
        self.class_names = names
        self.train_set, self.test_set = train, test

    def _image_dirs(self) -> tuple[Path, Path]:
        """(train folder, test folder) of an ImageFolder / generated source."""
        hp, root = self.hparams, Path(self.hparams.root)
        if hp.source == "generated":
            return root / "train", root / "test"
        return root / hp.train_dir, root / hp.test_dir

    def _folder_report(self, samples: list[tuple[Path, int]], folder: Path, progress: bool = True):
        records = [Record(path, (str(label),), str(path)) for path, label in samples]
        return check_records(
            folder.name, records, images=True, skip_bad_images=self.hparams.skip_bad_images,
            check_empty_labels=False, cache_key=str(folder.resolve()), progress=progress,
        )  # fmt: skip

    def check_data(self, progress: bool = True) -> list:
        """Decode every image of an ImageFolder / generated source (see ``ramlico.data.check``);
        one report per split (torchvision sources are not checked: they are array files)."""
        if self.hparams.source not in ("folder", "generated"):
            return []
        dirs = self._image_dirs()
        return [self._folder_report(read_image_folder(d)[0], d, progress) for d in dirs]

    def _checked(self, samples: list[tuple[Path, int]], folder: Path) -> list[tuple[Path, int]]:
        """``samples`` after the image check (bad images raise, or are dropped if asked)."""
        hp = self.hparams
        if not (hp.check_images or hp.skip_bad_images):
            return samples
        report = self._folder_report(samples, folder)
        raise_or_warn([report])
        kept = {r.image for r in report.records}
        return [(path, label) for path, label in samples if path in kept]

    def _hold_out(
        self, train: Dataset, labels: list[int], test_tf: Callable
    ) -> tuple[Dataset, list[int]]:
        """Split a seeded ``val_fraction`` off ``train``; the held-out part uses ``test_tf``."""
        hp = self.hparams
        n = len(labels)
        n_val = max(1, round(hp.val_fraction * n))
        if n_val >= n:
            raise ValueError(f"data.val_fraction={hp.val_fraction} leaves no training image")
        gen = torch.Generator().manual_seed(sample_seed(hp.val_seed, n))
        order = torch.randperm(n, generator=gen).tolist()
        held, kept = sorted(order[:n_val]), sorted(order[n_val:])
        self.val_set = Subset(self._eval_view(train, test_tf), held)
        log.info("validation: %d of %d training images held out (seed %d)", n_val, n, hp.val_seed)
        return Subset(train, kept), [labels[i] for i in kept]

    def _eval_view(self, train: Dataset, test_tf: Callable) -> Dataset:
        """The training split read with the evaluation transform (for the held-out part)."""
        if isinstance(train, ClassificationDataset):
            return ClassificationDataset(train.samples, test_tf)
        view, _, _, _ = self._torchvision(test_tf, test_tf)
        return view

    def label_names(self, split: str = "test") -> list[str]:
        if not self.class_names:
            self.setup()
        return list(self.class_names)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        hp = self.hparams
        # Seeded per-epoch order resumable mid-epoch, per-sample seeded augmentation (sampling.py);
        # the seed is the run's (seed_everything), so runs with the same seed see the same data.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        return self.resumable_loader(
            self.train_set, hp.batch_size, seed, shuffle=True, num_workers=hp.num_workers,
            drop_last=len(self.train_set) > hp.batch_size,
        )  # fmt: skip

    def test_dataloader(self) -> DataLoader:
        self.setup()
        hp = self.hparams
        return DataLoader(
            self.test_set, batch_size=hp.eval_batch_size, shuffle=False, num_workers=hp.num_workers
        )

    def val_dataloader(self) -> list[DataLoader]:
        """``[val loader]`` with ``val_fraction > 0``, else ``[]``."""
        self.setup()
        hp = self.hparams
        if self.val_set is None:
            return []
        return [DataLoader(
            self.val_set, batch_size=hp.eval_batch_size, shuffle=False, num_workers=hp.num_workers
        )]  # fmt: skip
