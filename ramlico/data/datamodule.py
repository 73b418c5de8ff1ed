"""LightningDataModule for multi-label data: seen-label training, ZSL/GZSL or closed-set tests.

Splits (docs/data.md):
    train: training images, targets over the seen labels (C = len(seen)); unseen labels in the
        training files are dropped (counted and logged), never supervised.
    val:   held-out images for model selection (``val_file``, or a seeded ``val_fraction`` of the
        training file), targets over the seen labels only (unseen labels are never looked at
        before the test); evaluated as split ``"seen"`` (``val/seen/mAP``).
    test, with unseen labels:
        zsl:  test images with at least one unseen label, targets over the unseen labels only
              (left out, with a warning, if no test image has an unseen label);
        gzsl: all test images, targets over seen + unseen labels.
    test, closed-set (no unseen labels): ``seen``: all test images over the seen labels.

``test_dataloader()`` returns one loader per name of ``eval_splits`` (``["zsl", "gzsl"]`` or
``["seen"]``) and ``val_dataloader()`` one per name of ``val_splits`` (``["seen"]``, or ``[]``
without validation data); a LightningModule builds its text classifier per ``dataloader_idx`` from
``label_names(split)``.

Checks: ``setup`` runs :mod:`ramlico.data.check` on every split first (missing / corrupt images,
empty label cells, duplicate rows; cached), so bad data fails before training starts.

Sources (``source=<name>``, :mod:`ramlico.data.sources`; each takes its own options, given next
to the DataModule's in the data config):
    generated: the built-in shapes data set (``ramlico.data.generated``), cached under ``root``;
               option ``generated`` (n_train, n_test, image_size, seed).
    coco:      ``instances_train``, ``instances_val``: official COCO instances files or RAM's json
               lists, detected by content (default root/annotations/instances_{train,val}2014.json);
               images in <image_root>/train2014 and <image_root>/val2014 (image_root default
               root). Labels: COCO_SEEN / COCO_UNSEEN.
    nus_wide:  the NUS-WIDE folder ``root`` (layout in ``ramlico.data.nus_wide``); 925 / 81 labels.
    custom:    ``train_file`` / ``test_file`` (.csv, .jsonl, .json-lines, .ndjson, or RAM's .json);
               relative image paths are resolved against ``image_root`` (default: each file's
               folder). Labels: ``seen`` / ``unseen`` if given; otherwise seen = labels of the
               training file (minus ``unseen``), unseen = labels of the test file that are not seen.
    A source of your own: a ``@register_source`` class (``docs/adding_a_method.md``).

Training order and resume: the training loader draws epoch ``e``'s order from ``(seed, e)`` alone
(``ramlico.data.sampling.ResumableSampler``, sharded over DDP ranks) and seeds each image's
augmentation from ``(seed, e, index)`` (``SeededSamples``), so no global random state is involved.
The datamodule's ``state_dict`` (saved by Lightning in every checkpoint) holds the fit loop's
position; a run resumed from a mid-epoch checkpoint (``callbacks.model_checkpoint.
every_n_train_steps``) trains exactly the remaining batches of that epoch, as the uninterrupted run
would have.

File arguments are used as given (absolute, or relative to the working directory); configs write
them as ``${data.root}/...``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from ramlico.data.base import RamlicoDataModule
from ramlico.data.check import SplitReport, check_records, overlapping_images, raise_or_warn
from ramlico.data.dataset import MultiLabelDataset, check_vocabulary
from ramlico.data.labels import LabelSpace
from ramlico.data.records import Record, read_any_label_file
from ramlico.data.sampling import ResumableTrainData, sample_seed
from ramlico.data.sources import MultiLabelSource, build_source, get_source
from ramlico.data.transforms import CLIP_MEAN, CLIP_STD, build_eval_transform, build_train_transform
from ramlico.utils import get_logger
from ramlico.utils.distributed import eval_sampler

log = get_logger(__name__)

TRAIN_SHUFFLE = ("epoch", "once", "none")


def multilabel_source(
    source: str, root: str, image_root: str | None, options: dict[str, Any]
) -> MultiLabelSource:
    """Build the source ``source`` with its ``options``; ``image_root`` goes to sources that
    read relative image paths (``custom``, ``coco``)."""
    cls = get_source(source, "multilabel")
    if image_root is not None and "image_root" in inspect.signature(cls.__init__).parameters:
        options = {**options, "image_root": image_root}
    return build_source(source, "multilabel", root, **options)  # type: ignore[return-value]


class MultiLabelDataModule(ResumableTrainData, RamlicoDataModule):
    """Train / ZSL / GZSL data for one source (see the module docstring).

    Args:
        source: a multi-label source name (``generated``, ``coco``, ``nus_wide``, ``custom``;
            :func:`ramlico.data.sources.list_sources`) or the import path of a source class.
        root: data folder (for ``generated`` the cache folder).
        val_file: a label file of validation images (any source; same formats as the custom
            files); when given, ``val_fraction`` is not used.
        val_fraction: hold out this fraction of the training file for validation (seeded by
            ``val_seed``; at least one image); 0 and no ``val_file``: no validation (the last
            checkpoint is the one tested).
        val_seed: seed of the held-out part (independent of the run seed, so runs with other
            seeds are selected on the same images).
        image_root: folder of relative image paths in ``val_file`` and in the source's label
            files (custom: default each label file's folder; coco: the folder holding
            train2014/ and val2014/, default root).
        image_size: model input side length.
        mean, std: normalisation (default CLIP's; RAM's released configs use 0.5 / 0.5).
        train_preset: ``"ram"`` (docs/ram.md, "Input pipeline") or ``"basic"``; ``augment``: extra
            keyword arguments of ``build_train_transform`` (probabilities, pad, interpolation).
        batch_size, eval_batch_size (default batch_size), num_workers, pin_memory: loader settings.
        check_images: decode every image at setup (cached; :mod:`ramlico.data.check`), so a
            missing or corrupt image fails before training instead of when its batch loads.
        skip_bad_images: drop missing / unreadable images at setup (listed) instead of failing.
        allow_empty_labels: custom files: keep rows with an empty label cell as images without
            any positive label (default: an error that names the rows).
        train_shuffle: ``"epoch"`` reshuffle every epoch, ``"once"`` one seeded shuffle then fixed
            order (RAM parity, docs/ram.md), ``"none"`` file order.
        exclude_unseen_from_train: drop training images that carry any unseen label (counted).
        val_max_images: validation uses at most this many evenly spaced images per split.
        seed: seed of the training order (``"epoch"``: one permutation per epoch from (seed,
            epoch); ``"once"``: the one shuffle) and of each image's augmentation (from (seed,
            epoch, index)); None: the run's seed (``PL_GLOBAL_SEED``, set by ``seed_everything``),
            else 0.
        **source_options: the source's own options (custom: ``train_file``, ``test_file``,
            ``seen``, ``unseen``; coco: ``instances_train``, ``instances_val``; generated:
            ``generated``); an option the source does not take is an error naming the ones it
            does.
    """

    def __init__(
        self,
        source: str = "generated",
        root: str = "data/generated",
        val_file: str | None = None,
        val_fraction: float = 0.0,
        val_seed: int = 0,
        image_root: str | None = None,
        image_size: int = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        train_preset: str = "ram",
        augment: dict[str, Any] | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        check_images: bool = True,
        skip_bad_images: bool = False,
        allow_empty_labels: bool = False,
        train_shuffle: str = "epoch",
        exclude_unseen_from_train: bool = False,
        val_max_images: int | None = None,
        seed: int | None = None,
        **source_options: Any,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.source = multilabel_source(source, root, image_root, source_options)
        if train_shuffle not in TRAIN_SHUFFLE:
            raise ValueError(
                f"train_shuffle must be one of {list(TRAIN_SHUFFLE)}, got {train_shuffle!r}"
            )
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError(f"batch sizes must be >= 1, got {batch_size}, {eval_batch_size}")
        self.root = Path(root)
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else int(seed)
        self._eval_splits: list[str] | None = None
        self._label_space: LabelSpace | None = None
        self._records: dict[str, list[Record]] = {}
        self._checked: dict[str, list[Record]] = {}
        self.train_dataset: MultiLabelDataset | None = None
        self.val_dataset: MultiLabelDataset | None = None
        self.test_datasets: dict[str, MultiLabelDataset] = {}
        self.train_transform = build_train_transform(
            image_size, mean, std, preset=train_preset, **(augment or {})
        )
        self.eval_transform = build_eval_transform(image_size, mean, std)

    # ---- files and labels -------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Write locally generated data (rank 0 only); other sources need no preparation."""
        self.source.prepare()

    def _read(self, split: str) -> list[Record]:
        """Records of ``split`` ("train", "val" (``val_file``) or "test"), read once, unchecked."""
        if split in self._records:
            return self._records[split]
        hp = self.hparams
        if split == "val":
            image_root = None if hp.image_root is None else Path(hp.image_root)
            records = read_any_label_file(Path(hp.val_file), image_root)
        else:
            records = self.source.records(split)
        self._records[split] = records
        return records

    @property
    def label_space(self) -> LabelSpace:
        """Seen / unseen labels of the source (custom without lists: read from the label files)."""
        if self._label_space is None:
            self._label_space = self.source.label_space()
        return self._label_space

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return tuple(self.hparams.mean), tuple(self.hparams.std)

    @property
    def dataset_name(self) -> str:
        return self.source.name

    def image_paths(self, split: str) -> list[Path] | None:
        dataset = self.test_datasets.get(split)
        return None if dataset is None else [r.image for r in dataset.records]

    def label_names(self, split: str) -> list[str]:
        """Label order of ``split``: "train"/"seen", "zsl"/"unseen" or "gzsl"."""
        return list(self.label_space.for_split(split))

    @property
    def eval_splits(self) -> list[str]:
        """Test splits: ``["zsl", "gzsl"]`` (``["gzsl"]`` if no test image has an unseen label)
        or ``["seen"]`` for a closed-set label space; known after ``setup``."""
        if self._eval_splits is None:
            raise RuntimeError("eval_splits is known after setup() (the Trainer calls it)")
        return list(self._eval_splits)

    @property
    def val_splits(self) -> list[str]:
        """Validation splits: ``["seen"]`` with validation data (``val_file`` /
        ``val_fraction``), else ``[]``."""
        hp = self.hparams
        return ["seen"] if hp.val_file is not None or hp.val_fraction > 0 else []

    # ---- checks -----------------------------------------------------------------------------

    def _split_files(self, split: str) -> str:
        """What ``split`` is read from (cache key of the image check and for messages)."""
        hp = self.hparams
        if split == "val":
            return str(Path(hp.val_file).resolve())
        return self.source.cache_key(split)

    def check_data(self, splits: Sequence[str] | None = None, progress: bool = True) -> list:
        """Run the data checks on ``splits`` (default every split with data); keep the clean
        records for ``setup``; return one :class:`~ramlico.data.check.SplitReport` per split."""
        hp = self.hparams
        if splits is None:
            splits = ["train", *(["val"] if hp.val_file else []), "test"]
        reports: list[SplitReport] = []
        for split in splits:
            report = check_records(
                split, self._read(split), images=hp.check_images,
                skip_bad_images=hp.skip_bad_images, allow_empty_labels=hp.allow_empty_labels,
                check_empty_labels=self.source.label_files or split == "val",
                cache_key=self._split_files(split), progress=progress,
            )  # fmt: skip
            self._checked[split] = report.records
            reports.append(report)
        return reports

    def _checked_records(self, splits: Sequence[str]) -> dict[str, list[Record]]:
        """Clean records of ``splits``; checks the ones not checked yet (raises on errors)."""
        todo = [s for s in splits if s not in self._checked]
        if todo:
            reports = self.check_data(todo)
            raise_or_warn(reports, overlapping_images({r.split: r.records for r in reports}))
        return {s: self._checked[s] for s in splits}

    # ---- datasets ---------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Check the data, then build the training and validation datasets (stage fit) and the
        test datasets (every stage); see the module docstring for the splits."""
        space, hp = self.label_space, self.hparams
        fitting = stage in (None, "fit")
        validating = fitting or stage == "validate"
        splits = ["train"] if fitting or (validating and hp.val_fraction > 0) else []
        splits += ["val"] if validating and hp.val_file else []
        records = self._checked_records([*splits, "test"])
        if "train" in records:
            train, val = self._split_train(records["train"], records.get("val"))
            if fitting and self.train_dataset is None:
                self.train_dataset = self._build_train(space, train)
        else:
            val = records.get("val")
        if val is not None and self.val_dataset is None:
            self.val_dataset = self._build_seen(val, "validation")
        if not self.test_datasets:
            self.test_datasets = self._build_test(space, records["test"])

    def _split_train(
        self, train: list[Record], val: list[Record] | None
    ) -> tuple[list[Record], list[Record] | None]:
        """(training records, validation records): ``val_file`` or a seeded fraction of train."""
        hp = self.hparams
        if val is not None or hp.val_fraction <= 0:
            return train, val  # data.val_file wins over data.val_fraction
        n_val = max(1, round(hp.val_fraction * len(train)))
        if n_val >= len(train):
            raise ValueError(
                f"data.val_fraction={hp.val_fraction} of {len(train)} training images leaves "
                "none to train on; lower data.val_fraction or pass data.val_file"
            )
        gen = torch.Generator().manual_seed(sample_seed(hp.val_seed, len(train)))
        held = set(torch.randperm(len(train), generator=gen)[:n_val].tolist())
        log.info(
            "validation: %d of %d training images held out (data.val_fraction=%s, val_seed=%d)",
            n_val, len(train), hp.val_fraction, hp.val_seed,
        )  # fmt: skip
        return (
            [r for i, r in enumerate(train) if i not in held],
            [r for i, r in enumerate(train) if i in held],
        )

    def _build_seen(self, records: list[Record], what: str) -> MultiLabelDataset:
        """Images over the seen labels (unseen labels dropped: never seen before the test)."""
        space = self.label_space
        check_vocabulary(records, space.gzsl)
        if not space.seen:
            raise ValueError(f"the {what} split needs seen labels; data.seen is empty")
        return MultiLabelDataset(records, space.seen, self.eval_transform, drop_unknown=True)

    def _build_test(self, space: LabelSpace, test: list[Record]) -> dict[str, MultiLabelDataset]:
        if not space.unseen:
            seen = MultiLabelDataset(test, space.seen, self.eval_transform)
            log.info("test: closed-set, %d images over %d labels", len(seen), len(space.seen))
            self._eval_splits = ["seen"]
            return {"seen": seen}
        gzsl = MultiLabelDataset(test, space.gzsl, self.eval_transform)
        unseen = set(space.unseen)
        zsl_records = [r for r in gzsl.records if unseen.intersection(r.labels)]
        if not zsl_records:
            log.warning(
                "no test image has one of the %d unseen labels %s: the ZSL split is left out, "
                "GZSL is evaluated (check data.test_file and data.unseen)",
                len(space.unseen), list(space.unseen)[:10],
            )  # fmt: skip
            self._eval_splits = ["gzsl"]
            return {"gzsl": gzsl}
        log.info(
            "test: ZSL %d images (with >= 1 unseen label), GZSL %d images",
            len(zsl_records), len(gzsl),
        )  # fmt: skip
        zsl = MultiLabelDataset(zsl_records, space.unseen, self.eval_transform, drop_unknown=True)
        self._eval_splits = ["zsl", "gzsl"]
        return {"zsl": zsl, "gzsl": gzsl}

    def _build_train(self, space: LabelSpace, records: list[Record]) -> MultiLabelDataset:
        hp = self.hparams
        if not space.seen:
            raise ValueError(
                "no seen labels to train on (data.seen is empty); list the training labels in "
                "data.seen, or evaluate a training-free method with evaluate.py"
            )
        check_vocabulary(records, space.gzsl)
        if hp.exclude_unseen_from_train:
            unseen = set(space.unseen)
            kept = [r for r in records if not unseen.intersection(r.labels)]
            log.info(
                "exclude_unseen_from_train: dropped %d of %d training images with an unseen label",
                len(records) - len(kept),
                len(records),
            )
            records = kept
        if hp.train_shuffle == "once":
            order = torch.randperm(len(records), generator=torch.Generator().manual_seed(self.seed))
            records = [records[i] for i in order.tolist()]
        return MultiLabelDataset(records, space.seen, self.train_transform, drop_unknown=True)

    # ---- loaders ----------------------------------------------------------------------------

    def _loader(self, dataset: Any, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        # Evaluation under DDP: every image exactly once over all ranks.
        sampler = None if shuffle else eval_sampler(dataset)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=workers > 0,
            generator=self._generator(),
        )

    def _generator(self) -> torch.Generator:
        # A DataLoader draws a worker base seed per iterator; from its own generator it leaves
        # the global one (model randomness, restored on resume) untouched.
        return torch.Generator().manual_seed(self.seed)

    def _require(self) -> None:
        if not self.test_datasets:
            raise RuntimeError("call setup() before asking for dataloaders (the Trainer does this)")

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise RuntimeError(
                "call setup('fit') before train_dataloader() (the Trainer does this)"
            )
        hp = self.hparams
        # ResumableSampler is a DistributedSampler: under DDP Lightning keeps it (no wrapping),
        # each rank reads its shard.
        return self.resumable_loader(
            self.train_dataset,
            batch_size=hp.batch_size,
            seed=self.seed,
            shuffle=hp.train_shuffle == "epoch",
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            persistent_workers=hp.num_workers > 0,
        )

    def test_dataloader(self) -> list[DataLoader]:
        """[ZSL loader, GZSL loader], in the order of ``eval_splits``."""
        self._require()
        size = self.hparams.eval_batch_size or self.hparams.batch_size
        return [self._loader(self.test_datasets[s], size, False) for s in self.eval_splits]

    def val_dataloader(self) -> list[DataLoader]:
        """``[seen loader]`` over the validation images (at most ``val_max_images`` evenly
        spaced ones if set); ``[]`` without validation data."""
        if not self.val_splits:
            return []
        if self.val_dataset is None:
            raise RuntimeError("call setup('fit') before val_dataloader() (the Trainer does this)")
        size = self.hparams.eval_batch_size or self.hparams.batch_size
        dataset: Any = self.val_dataset
        limit = self.hparams.val_max_images
        if limit is not None and limit < len(dataset):
            indices = torch.linspace(0, len(dataset) - 1, limit).round().long().unique()
            dataset = Subset(dataset, indices.tolist())
        return [self._loader(dataset, size, False)]
