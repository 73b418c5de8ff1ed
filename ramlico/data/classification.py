"""Single-label classification data, for every method: LICO trains on it, the zero-shot methods
(LaZSL, OTFusion, CLIP) evaluate on it. One DataModule, any source (:mod:`ramlico.data.sources`):

* ``generated``: the 20 coloured-shape classes, written once under ``root`` (demo, tests);
* ``folder``: an ImageFolder tree (``root``, or ``root/<train_dir>`` and ``root/<test_dir>``);
* ``cifar10`` / ``cifar100`` / ``svhn``: torchvision archives under ``root``;
* ``imagenet`` (and ``imagenet_v2`` / ``_sketch`` / ``_r`` / ``_a``), ``cub``, ``pets``,
  ``food101``, ``places365``: standard sets in their distributed layout, with their own class
  names (ImageNet's bundled with ramlico).

Class names come from the source in label order; ``class_names_file`` replaces them (one per line
in label order, or ``<folder / WNID> <name>`` lines, :func:`ramlico.data.image_folder.
read_class_names_file`).

Splits: ``train`` (fit only; sources without one are evaluation sets), an optional validation part
held out of it (``val_fraction``, seeded by ``val_seed``), and ``test``. Test and validation items
are ``(image, class index, dataset index)``; training items ``(image, class index)``.

Preprocessing: the train preset (:func:`ramlico.data.classification_transforms.
build_classification_transform`) with the source's normalisation (``mean``/``std`` override it;
ImageNet's by default). The zero-shot methods replace the evaluation transform by their
backbone's own (:meth:`ClassificationDataModule.set_transform`, called by
``RamlicoModule.setup``); a transform with ``uses_index = True`` is called ``transform(image,
index)`` (LaZSL seeds each image's crops from its dataset index). Under DDP the evaluation
loaders give every image to exactly one rank (:func:`ramlico.utils.distributed.eval_sampler`).

Limited labels: ``num_labels`` (total, spread evenly over the classes, as LICO's "CIFAR-10 40
labels" = 4 per class) or ``shots`` (k per class) selects a balanced, seeded subset of the
training split; its images get additive Gaussian noise ``N(0, limited_label_noise_std^2)``
after normalisation (LICO reference code).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ramlico.data.base import RamlicoDataModule
from ramlico.data.check import check_records, raise_or_warn
from ramlico.data.classification_transforms import (
    CLASSIFICATION_PRESETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_classification_transform,
)
from ramlico.data.image_folder import read_class_names_file
from ramlico.data.labelled_images import (
    ClassificationDataset,
    ImageFiles,
    LabelledImages,
    collate_samples,
)
from ramlico.data.records import Record
from ramlico.data.sampling import ResumableTrainData, sample_seed
from ramlico.data.sources import SingleLabelSource, build_source
from ramlico.utils import get_logger
from ramlico.utils.distributed import eval_sampler

__all__ = ["ClassificationDataModule", "balanced_subset"]

log = get_logger(__name__)


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


class ClassificationDataModule(ResumableTrainData, RamlicoDataModule):
    """Train / validation / test splits of a single-label source (task ``multiclass``).

    Args:
        source: a single-label source name (:func:`ramlico.data.sources.list_sources`) or the
            import path of a source class.
        root: the data set folder (for ``generated`` the cache folder).
        class_names_file: readable class names replacing the source's (see module docstring).
        image_size: model input side ``S``.
        mean, std: normalisation; ``None`` = the source's own (CIFAR, SVHN) or ImageNet's.
        train_preset: augmentation preset (``cifar``, ``svhn``, ``imagenet``, ``basic``,
            ``none``); its evaluation side is the evaluation transform.
        num_labels: total labelled training images (balanced over classes) or ``None``.
        shots: labelled images per class (k-shot) or ``None``; exclusive with ``num_labels``.
        subset_seed: seed of the labelled subset.
        limited_label_noise_std: training noise std when a subset is used (LICO code: 0.1).
        batch_size, eval_batch_size (default ``batch_size``), num_workers: loader settings.
        val_fraction: hold out this fraction of the training split for validation (0: none).
        val_seed: seed of the held-out part.
        check_images: decode every image of file-based splits before use (cached;
            :mod:`ramlico.data.check`).
        skip_bad_images: drop missing / unreadable images (listed) instead of an error.
        **source_options: the source's own options (folder: ``train_dir``, ``test_dir``;
            generated: ``generated``; cifar/svhn: ``download``, ``svhn_extra``; cub, pets,
            food101: ``split``); an option the source does not take is named with the ones it
            does.
    """

    task = "multiclass"
    uses_model_transform = True

    def __init__(
        self,
        source: str = "generated",
        root: str = "data/generated_cls",
        class_names_file: str | None = None,
        image_size: int = 224,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        train_preset: str = "basic",
        num_labels: int | None = None,
        shots: int | None = None,
        subset_seed: int = 0,
        limited_label_noise_std: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.0,
        val_seed: int = 0,
        check_images: bool = True,
        skip_bad_images: bool = False,
        **source_options: Any,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if num_labels is not None and shots is not None:
            raise ValueError("set either data.num_labels (total) or data.shots (per class)")
        if train_preset not in CLASSIFICATION_PRESETS:
            raise ValueError(
                f"data.train_preset={train_preset!r}; choose one of {CLASSIFICATION_PRESETS}"
            )
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError(f"batch sizes must be >= 1, got {batch_size}, {eval_batch_size}")
        self.save_hyperparameters(logger=False)
        self.source: SingleLabelSource = build_source(  # type: ignore[assignment]
            source, "singlelabel", root, **source_options
        )
        self.class_names: list[str] = []
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: ClassificationDataset | None = None
        self.transform: Callable[..., Any] = self._transform(train=False)

    # ------------------------------------------------------------------ the interface
    @property
    def eval_splits(self) -> list[str]:
        return ["test"]

    @property
    def val_splits(self) -> list[str]:
        """``["val"]`` with ``val_fraction > 0``, else ``[]`` (no validation)."""
        return ["val"] if self.hparams.val_fraction > 0 else []

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        hp, stats = self.hparams, self.source.stats or (IMAGENET_MEAN, IMAGENET_STD)
        return tuple(hp.mean or stats[0]), tuple(hp.std or stats[1])

    @property
    def dataset_name(self) -> str:
        return self.source.name

    def label_names(self, split: str = "test") -> list[str]:
        """The class names (every split has all classes)."""
        if not self.class_names:
            self.class_names = self._class_names()
        return list(self.class_names)

    def image_paths(self, split: str = "test") -> list[Path] | None:
        self._require_test()
        return self.test_images.paths

    def set_transform(self, transform: Callable[..., Any]) -> None:
        """Evaluate with ``transform`` (a model's own preprocessing) instead of the preset's,
        for the test (and validation) data built now and later."""
        self.transform = transform
        if self.test_set is not None:
            self.test_set.transform = transform
        if self.val_set is not None:
            self.val_set.dataset.transform = transform  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ building
    def _transform(self, train: bool, noise_std: float = 0.0) -> Callable[..., Any]:
        hp = self.hparams
        mean, std = self.normalization
        return build_classification_transform(
            hp.train_preset, hp.image_size, mean, std, train, noise_std
        )

    def _class_names(self) -> list[str]:
        names = self.source.class_names()
        if self.hparams.class_names_file:
            keys = self.source.class_keys()
            names = read_class_names_file(Path(self.hparams.class_names_file), keys)
        return names

    def prepare_data(self) -> None:
        self.source.prepare()

    def _checked(self, images: LabelledImages, split: str, progress: bool = True) -> Any:
        """The image check of a file-based split: bad images raise (or are dropped if asked)."""
        hp = self.hparams
        paths = images.paths
        if paths is None or not (hp.check_images or hp.skip_bad_images):
            return images, None
        records = [Record(p, (str(y),), str(p)) for p, y in zip(paths, images.labels, strict=True)]
        report = check_records(
            split, records, images=True, skip_bad_images=hp.skip_bad_images,
            check_empty_labels=False, cache_key=self.source.cache_key(split), progress=progress,
        )  # fmt: skip
        kept = {r.image for r in report.records}
        if len(kept) < len(paths):
            images = ImageFiles([(p, y) for p, y in zip(paths, images.labels, strict=True)
                                 if p in kept])  # fmt: skip
        return images, report

    def check_data(self, splits: Sequence[str] | None = None, progress: bool = True) -> list:
        """Decode every image of the file-based splits (see ``ramlico.data.check``); one report
        per split (array sources such as CIFAR are not checked)."""
        self.prepare_data()
        reports = []
        for split in splits or self.source.splits:
            _, report = self._checked(self.source.images(split), split, progress)
            if report is not None:
                reports.append(report)
        return reports

    def _split(self, split: str) -> LabelledImages:
        images, report = self._checked(self.source.images(split), split)
        if report is not None:
            raise_or_warn([report])
        return images

    def setup(self, stage: str | None = None) -> None:
        """Build the test split (every stage) and, for ``fit``, the training and validation
        splits; data checks first."""
        if self.test_set is None:
            self.prepare_data()
            self.label_names()
            self.test_images = self._split("test")
            self.test_set = ClassificationDataset(self.test_images, self.transform, with_index=True)
        validating = stage == "validate" and self.hparams.val_fraction > 0
        if (stage in (None, "fit") or validating) and self.train_set is None:
            self.source.require_split("train")
            self._build_train(self._split("train"))

    def _build_train(self, images: LabelledImages) -> None:
        hp = self.hparams
        limited = hp.num_labels is not None or hp.shots is not None
        noise = hp.limited_label_noise_std if limited else 0.0
        train: Dataset = ClassificationDataset(images, self._transform(True, noise))
        labels = list(images.labels)
        if hp.val_fraction > 0:
            train, labels = self._hold_out(images, train, labels)
        if limited:
            per_class = hp.shots
            n_classes = len(self.class_names)
            if hp.num_labels is not None:
                if hp.num_labels % n_classes:
                    raise ValueError(
                        f"data.num_labels={hp.num_labels} is not a multiple of the "
                        f"{n_classes} classes; use e.g. {n_classes * 4}"
                    )
                per_class = hp.num_labels // n_classes
            idx = balanced_subset(labels, per_class, n_classes, hp.subset_seed)
            train = Subset(train, idx)
            log.info("labelled subset: %d per class, %d images", per_class, len(idx))
        self.train_set = train

    def _hold_out(
        self, images: LabelledImages, train: Dataset, labels: list[int]
    ) -> tuple[Dataset, list[int]]:
        """Split a seeded ``val_fraction`` off ``train``; the held-out part uses the evaluation
        transform."""
        hp = self.hparams
        n = len(labels)
        n_val = max(1, round(hp.val_fraction * n))
        if n_val >= n:
            raise ValueError(f"data.val_fraction={hp.val_fraction} leaves no training image")
        gen = torch.Generator().manual_seed(sample_seed(hp.val_seed, n))
        order = torch.randperm(n, generator=gen).tolist()
        held, kept = sorted(order[:n_val]), sorted(order[n_val:])
        view = ClassificationDataset(images, self.transform, with_index=True)
        self.val_set = Subset(view, held)
        log.info("validation: %d of %d training images held out (seed %d)", n_val, n, hp.val_seed)
        return Subset(train, kept), [labels[i] for i in kept]

    # ------------------------------------------------------------------ loaders
    def _require_test(self) -> None:
        if self.test_set is None:
            self.setup("test")

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            dataset, batch_size=hp.eval_batch_size or hp.batch_size, shuffle=False,
            sampler=eval_sampler(dataset), num_workers=hp.num_workers, collate_fn=collate_samples,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        hp = self.hparams
        # Seeded per-epoch order resumable mid-epoch, per-sample seeded augmentation (sampling.py);
        # the seed is the run's (seed_everything), so runs with the same seed see the same data.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        return self.resumable_loader(
            self.train_set, hp.batch_size, seed, shuffle=True, num_workers=hp.num_workers,
            drop_last=len(self.train_set) > hp.batch_size,  # type: ignore[arg-type]
        )  # fmt: skip

    def test_dataloader(self) -> DataLoader:
        self._require_test()
        return self._eval_loader(self.test_set)  # type: ignore[arg-type]

    def val_dataloader(self) -> list[DataLoader]:
        """``[val loader]`` with ``val_fraction > 0``, else ``[]``."""
        if self.val_set is None:
            return []
        return [self._eval_loader(self.val_set)]
