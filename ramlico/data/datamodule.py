"""LightningDataModule for zero-shot multi-label recognition: seen-label training, ZSL + GZSL tests.

Splits (ram.md 11.1, metrics.md 1.1):
    train: training images, targets over the seen labels (C = len(seen)); unseen labels in the
        training files are dropped (counted and logged), never supervised.
    zsl:   test images with at least one unseen label, targets over the unseen labels only.
    gzsl:  all test images, targets over seen + unseen labels.

``test_dataloader()`` and ``val_dataloader()`` return ``[zsl_loader, gzsl_loader]`` in the order of
``eval_splits``; a LightningModule builds its text classifier per ``dataloader_idx`` from
``label_names(eval_splits[dataloader_idx])``.

Sources:
    generated: the built-in shapes data set (``ramlico.data.generated``), cached under ``root``.
    coco:      ``instances_train``, ``instances_val``: official COCO instances files or RAM's json
               lists, detected by content (default root/annotations/instances_{train,val}2014.json);
               images in <image_root>/train2014 and <image_root>/val2014 (image_root default
               root). Labels: COCO_SEEN / COCO_UNSEEN.
    nus_wide:  the NUS-WIDE folder ``root`` (layout in ``ramlico.data.nus_wide``); 925 / 81 labels.
    custom:    ``train_file`` / ``test_file`` (.csv, .jsonl, .json-lines, .ndjson, or RAM's .json);
               relative image paths are resolved against ``image_root`` (default: each file's
               folder). Labels: ``seen`` / ``unseen`` if given; otherwise seen = labels of the
               training file (minus ``unseen``), unseen = labels of the test file that are not seen.

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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Subset

from ramlico.data.dataset import MultiLabelDataset, check_vocabulary
from ramlico.data.generated import generated_label_space, make_generated_dataset
from ramlico.data.labels import COCO_SEEN, COCO_UNSEEN, LabelSpace
from ramlico.data.nus_wide import read_nus_label_space, read_nus_wide
from ramlico.data.records import Record, read_coco_file, read_label_file, read_ram_json
from ramlico.data.sampling import ResumableTrainData
from ramlico.data.transforms import CLIP_MEAN, CLIP_STD, build_eval_transform, build_train_transform
from ramlico.utils import get_logger
from ramlico.utils.distributed import eval_sampler

log = get_logger(__name__)

SOURCES = ("generated", "coco", "nus_wide", "custom")
TRAIN_SHUFFLE = ("epoch", "once", "none")
GENERATED_KEYS = ("n_train", "n_test", "image_size", "seed")


def read_any_label_file(path: Path, image_root: Path | None) -> list[Record]:
    """``.json`` -> RAM's list (``read_ram_json``); anything else -> ``read_label_file``."""
    if Path(path).suffix.lower() == ".json":
        return read_ram_json(path, image_root)
    return read_label_file(path, image_root)


class MultiLabelDataModule(ResumableTrainData, LightningDataModule):
    """Train / ZSL / GZSL data for one source (see the module docstring).

    Args:
        source: ``"generated"``, ``"coco"``, ``"nus_wide"`` or ``"custom"``.
        root: data folder (for ``generated`` the cache folder).
        train_file, test_file: custom only; label files.
        image_root: custom: image folder (default each label file's folder);
            coco: folder holding train2014/ and val2014/ (default root).
        seen, unseen: custom only; label lists (any order; stored sorted).
        instances_train, instances_val: coco only; label files (default under root/annotations;
            RAM's ``train_48_filtered.json`` / ``test_65_filtered.json``).
        generated: generated only; overrides of ``n_train``, ``n_test``, ``image_size``, ``seed``.
        image_size: model input side length.
        mean, std: normalisation (default CLIP's; RAM's released configs use 0.5 / 0.5).
        train_preset: ``"ram"`` (ram.md 10.2) or ``"basic"``; ``augment``: extra keyword arguments
            of ``build_train_transform`` (probabilities, pad, interpolation).
        batch_size, eval_batch_size (default batch_size), num_workers, pin_memory: loader settings.
        skip_bad_images: drop unreadable images at setup (listed) instead of failing when loaded.
        train_shuffle: ``"epoch"`` reshuffle every epoch, ``"once"`` one seeded shuffle then fixed
            order (RAM parity, ram.md 10.2), ``"none"`` file order.
        exclude_unseen_from_train: drop training images that carry any unseen label (counted).
        val_max_images: validation uses at most this many evenly spaced images per split.
        seed: seed of the training order (``"epoch"``: one permutation per epoch from (seed,
            epoch); ``"once"``: the one shuffle) and of each image's augmentation (from (seed,
            epoch, index)); None: the run's seed (``PL_GLOBAL_SEED``, set by ``seed_everything``),
            else 0.
    """

    def __init__(
        self,
        source: str = "generated",
        root: str = "data/generated",
        train_file: str | None = None,
        test_file: str | None = None,
        image_root: str | None = None,
        seen: list[str] | None = None,
        unseen: list[str] | None = None,
        instances_train: str | None = None,
        instances_val: str | None = None,
        generated: dict[str, int] | None = None,
        image_size: int = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        train_preset: str = "ram",
        augment: dict[str, Any] | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        skip_bad_images: bool = False,
        train_shuffle: str = "epoch",
        exclude_unseen_from_train: bool = False,
        val_max_images: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if source not in SOURCES:
            raise ValueError(f"unknown data source {source!r}; allowed: {list(SOURCES)}")
        if train_shuffle not in TRAIN_SHUFFLE:
            raise ValueError(
                f"train_shuffle must be one of {list(TRAIN_SHUFFLE)}, got {train_shuffle!r}"
            )
        if source != "custom" and (seen is not None or unseen is not None):
            raise ValueError(
                f"seen/unseen are only read with source='custom'; source {source!r} has fixed "
                "label lists, remove seen/unseen from the config"
            )
        if source == "custom" and (train_file is None or test_file is None):
            raise ValueError(
                f"source='custom' needs train_file and test_file, got {train_file!r}, {test_file!r}"
            )
        unknown = sorted(set(generated or {}) - set(GENERATED_KEYS))
        if unknown:
            raise ValueError(
                f"unknown keys {unknown} in generated; allowed: {list(GENERATED_KEYS)}"
            )
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError(f"batch sizes must be >= 1, got {batch_size}, {eval_batch_size}")
        self.root = Path(root)
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else int(seed)
        self.eval_splits: list[str] = ["zsl", "gzsl"]
        self._label_space: LabelSpace | None = None
        self._records: dict[str, list[Record]] = {}
        self.train_dataset: MultiLabelDataset | None = None
        self.test_datasets: dict[str, MultiLabelDataset] = {}
        self.train_transform = build_train_transform(
            image_size, mean, std, preset=train_preset, **(augment or {})
        )
        self.eval_transform = build_eval_transform(image_size, mean, std)

    # ---- files and labels -------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Write the generated data set (rank 0 only); other sources need no preparation."""
        if self.hparams.source == "generated":
            make_generated_dataset(self.root, **(self.hparams.generated or {}))

    def _read(self, split: str) -> list[Record]:
        """Records of ``split`` ("train" or "test"), read once."""
        if split in self._records:
            return self._records[split]
        hp, source = self.hparams, self.hparams.source
        if source == "generated":
            info = make_generated_dataset(self.root, **(hp.generated or {}))
            records = read_label_file(info[f"{split}_file"])
        elif source == "coco":
            images = Path(hp.image_root or self.root) / (
                "train2014" if split == "train" else "val2014"
            )
            file = hp.instances_train if split == "train" else hp.instances_val
            file = file or self.root / "annotations" / f"instances_{images.name}.json"
            records = read_coco_file(Path(file), images, self.label_space.gzsl)
        elif source == "nus_wide":
            records, _ = read_nus_wide(self.root, split)  # type: ignore[arg-type]
        else:
            file = hp.train_file if split == "train" else hp.test_file
            image_root = None if hp.image_root is None else Path(hp.image_root)
            records = read_any_label_file(Path(file), image_root)
        self._records[split] = records
        return records

    @property
    def label_space(self) -> LabelSpace:
        """Seen / unseen labels of the source (custom without lists: read from the label files)."""
        if self._label_space is None:
            self._label_space = self._resolve_label_space()
        return self._label_space

    def _resolve_label_space(self) -> LabelSpace:
        hp = self.hparams
        if hp.source == "generated":
            return generated_label_space()
        if hp.source == "coco":
            return LabelSpace(COCO_SEEN, COCO_UNSEEN)
        if hp.source == "nus_wide":
            return read_nus_label_space(self.root)
        if hp.seen is not None and hp.unseen is not None:
            return LabelSpace(hp.seen, hp.unseen)
        unseen = set(hp.unseen or [])
        seen = (
            set(hp.seen)
            if hp.seen is not None
            else ({x for r in self._read("train") for x in r.labels} - unseen)
        )
        if hp.unseen is None:
            unseen = {x for r in self._read("test") for x in r.labels} - seen
        if not unseen:
            raise ValueError(
                f"no unseen labels: every label of {hp.test_file} also occurs in {hp.train_file}; "
                "pass unseen=[...] (and seen=[...]) to define the zero-shot split"
            )
        space = LabelSpace(sorted(seen), sorted(unseen))
        log.info("custom label space inferred from the label files: %r", space)
        return space

    def label_names(self, split: str) -> list[str]:
        """Label order of ``split``: "train"/"seen", "zsl"/"unseen" or "gzsl"."""
        return list(self.label_space.for_split(split))

    # ---- datasets ---------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Build the training dataset (stage fit) and the ZSL / GZSL datasets (every stage)."""
        space, hp = self.label_space, self.hparams
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._build_train(space)
        if not self.test_datasets:
            test = self._read("test")
            gzsl = MultiLabelDataset(test, space.gzsl, self.eval_transform, hp.skip_bad_images)
            unseen = set(space.unseen)
            zsl_records = [r for r in gzsl.records if unseen.intersection(r.labels)]
            if not zsl_records:
                raise ValueError(
                    f"no test image has an unseen label ({len(space.unseen)} unseen labels); "
                    "the ZSL split needs at least one (check the test file and the unseen list)"
                )
            log.info(
                "test: ZSL %d images (with >= 1 unseen label), GZSL %d images",
                len(zsl_records),
                len(gzsl),
            )
            zsl = MultiLabelDataset(
                zsl_records, space.unseen, self.eval_transform, drop_unknown=True
            )
            self.test_datasets = {"zsl": zsl, "gzsl": gzsl}

    def _build_train(self, space: LabelSpace) -> MultiLabelDataset:
        hp = self.hparams
        records = self._read("train")
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
        return MultiLabelDataset(
            records, space.seen, self.train_transform, hp.skip_bad_images, drop_unknown=True
        )

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
        """The test loaders, each limited to ``val_max_images`` evenly spaced images if set."""
        self._require()
        size = self.hparams.eval_batch_size or self.hparams.batch_size
        limit = self.hparams.val_max_images
        loaders = []
        for split in self.eval_splits:
            dataset: Any = self.test_datasets[split]
            if limit is not None and limit < len(dataset):
                indices = torch.linspace(0, len(dataset) - 1, limit).round().long().unique()
                dataset = Subset(dataset, indices.tolist())
            loaders.append(self._loader(dataset, size, False))
        return loaders
