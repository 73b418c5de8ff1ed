"""Shared LightningModule plumbing: evaluation splits, metrics, lean checkpoints, eval-only guard.

Every method subclasses :class:`RamlicoModule` and implements :meth:`predict_scores`
(``(B, 3, H, W)`` images -> ``(B, C)`` scores over the split's labels). Evaluation runs one
dataloader per split with the label set of that split, and logs ``{stage}/{split}/{metric}``
(e.g. ``test/zsl/F1@3``): the datamodule names the test splits in ``eval_splits`` (``"zsl"``,
``"gzsl"``; ``"seen"`` for a closed-set label space) and the validation splits in ``val_splits``
(``["seen"]`` / ``["val"]`` for a held-out part of the training data, ``[]`` without one). The
datamodule is read through its typed interface only (:class:`ramlico.data.RamlicoDataModule`).

Checkpoints hold only what cannot be rebuilt: trainable parameters and the persistent buffers of
non-frozen modules, plus the resolved run config and the label names (key ``"ramlico"``). Frozen
backbones are rebuilt from their config (hub tag, local file or seeded random init).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import lightning as L
import torch
from timm.scheduler.scheduler import Scheduler as TimmScheduler
from torch import nn

from ramlico.data.base import RamlicoDataModule
from ramlico.data.sampling import get_rng_states, set_rng_states
from ramlico.metrics import MultiLabelMetrics, TopKAccuracy
from ramlico.utils import get_logger
from ramlico.utils.frozen import frozen_submodules

__all__ = ["RamlicoModule", "adapt_ks"]

log = get_logger(__name__)
Tensor = torch.Tensor


def adapt_ks(ks: Sequence[int], n_labels: int, split: str, task: str = "multilabel") -> list[int]:
    """The ``k`` of P/R/F1@k (or top-k accuracy) that a split with ``n_labels`` labels supports.

    Each ``k > n_labels`` becomes ``n_labels`` (a split with 2 unseen labels reports F1@2 instead
    of F1@3 and F1@5), duplicates removed, order kept; a warning says so.

    Example:
        >>> adapt_ks([3, 5], 2, "zsl")
        [2]
    """
    if n_labels < 1:
        raise ValueError(f"split '{split}' has no labels; it cannot be evaluated")
    adapted = list(dict.fromkeys(min(int(k), n_labels) for k in ks))
    if adapted != [int(k) for k in ks]:
        what = "P/R/F1@k" if task == "multilabel" else "top-k accuracy"
        log.warning(
            "split '%s' has %d label%s: %s reported at k=%s instead of k=%s",
            split, n_labels, "" if n_labels == 1 else "s", what,
            ", ".join(map(str, adapted)), ", ".join(map(str, ks)),
        )  # fmt: skip
    return adapted


class RamlicoModule(L.LightningModule, ABC):
    """Base class of every ramlico method.

    Args:
        ks: the ``k`` of P@k / R@k / F1@k.
    """

    #: True for training-free methods; ``train.py`` refuses them.
    eval_only: ClassVar[bool] = False
    #: True if the model scores any label set (text embeddings); False for a fixed class head.
    #: Evaluating a checkpoint on other labels is then an error (``check_label_space``).
    open_vocabulary: ClassVar[bool] = True

    def __init__(self, ks: Sequence[int] = (3, 5)) -> None:
        super().__init__()
        self.ks = tuple(ks)
        # Checkpoints omit frozen weights, so loading must accept their absence (checked below).
        self.strict_loading = False
        self.eval_splits: list[str] = []
        self.val_splits: list[str] = []
        self.label_names: dict[str, list[str]] = {}
        self.run_config: dict[str, Any] | None = None
        self.launch: dict[str, Any] | None = None  # experiment + command line (train.py sets it)
        self.metrics = nn.ModuleDict()
        self.task = "multilabel"
        self._updated: set[str] = set()

    # ----------------------------------------------------------------- label sets and metrics
    @property
    def datamodule(self) -> RamlicoDataModule | None:
        """The Trainer's datamodule (the typed :class:`~ramlico.data.RamlicoDataModule`), or
        ``None`` outside a Trainer run."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is not None and not isinstance(dm, RamlicoDataModule):
            raise TypeError(
                f"{type(self).__name__} needs a ramlico datamodule (a ramlico.data."
                f"RamlicoDataModule), got {type(dm).__name__}; see docs/adding_a_method.md"
            )
        return dm

    def setup(self, stage: str) -> None:
        dm = self.datamodule
        if dm is None:
            raise ValueError(
                f"{type(self).__name__} needs a ramlico datamodule (a ramlico.data."
                "RamlicoDataModule); pass datamodule=... to the Trainer"
            )
        self.eval_splits = list(dm.eval_splits)
        self.val_splits = list(dm.val_splits)
        splits = list(dict.fromkeys([*self.eval_splits, *self.val_splits]))
        self.label_names = {s: list(dm.label_names(s)) for s in ["train", *splits]}
        self.task = dm.task
        transform = self.eval_transform()
        if transform is not None and dm.uses_model_transform:
            dm.set_transform(transform)  # the model's own preprocessing (zero-shot methods)
        for split in splits:
            if split not in self.metrics:
                self.metrics[split] = self._make_metric(split)
        self._updated: set[str] = set()
        self.on_label_sets_ready()

    def _make_metric(self, split: str) -> nn.Module:
        """P/R/F1@k + mAP (multi-label) or top-1/top-5 accuracy (multi-class), k <= C."""
        wanted = self.ks if self.task == "multilabel" else (1, 5)
        ks = adapt_ks(wanted, len(self.label_names[split]), split, self.task)
        if self.task == "multiclass":
            return TopKAccuracy(ks=ks)
        return MultiLabelMetrics(ks=ks)

    def on_label_sets_ready(self) -> None:
        """Hook: the label names of every split are known (build text classifiers here)."""

    def eval_transform(self) -> Any:
        """The model's own evaluation preprocessing (decoded PIL image -> model input), or
        ``None`` to keep the datamodule's. Datamodules with ``uses_model_transform`` (single-label
        classification) adopt it in :meth:`setup`; zero-shot methods return their backbone's."""
        return None

    @abstractmethod
    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        """``(B, 3, H, W)`` images -> ``(B, C)`` scores over ``self.label_names[split]``."""

    def _eval_step(self, batch: Any, dataloader_idx: int, splits: Sequence[str]) -> None:
        images, targets = batch[0], batch[1]
        split = splits[dataloader_idx]
        scores = self.predict_scores(images, split)
        expected = (
            targets.shape if self.task == "multilabel" else (*targets.shape, scores.shape[-1])
        )
        if scores.shape != expected:
            raise ValueError(
                f"split '{split}': scores {tuple(scores.shape)} vs targets {tuple(targets.shape)}"
            )
        self.metrics[split].update(scores.float(), targets)
        self._updated.add(split)

    def _eval_epoch_end(self, stage: str, splits: Sequence[str]) -> None:
        for split in splits:
            if split not in self._updated:
                continue
            metric = self.metrics[split]
            values = metric.compute()
            # torchmetrics has already reduced the states over all ranks, so every rank holds the
            # same values; sync_dist=True only makes Lightning's epoch-level mean of these equal
            # values explicit (and avoids its per-key "use sync_dist=True" warning under DDP).
            self.log_dict({f"{stage}/{split}/{k}": v for k, v in values.items()}, sync_dist=True)
            metric.reset()
        self._updated = set()

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx, self.val_splits)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx, self.eval_splits)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val", self.val_splits)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test", self.eval_splits)

    # ----------------------------------------------------------------- optimisation
    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step a scheduler at its interval: torch schedulers as Lightning does; timm schedulers
        (``timm.scheduler.Scheduler``, which Lightning does not step) with the number of finished
        epochs (``t_in_epochs``) or of optimiser updates, timm's own convention."""
        if isinstance(scheduler, TimmScheduler):
            if scheduler.t_in_epochs:
                scheduler.step(epoch=self.current_epoch + 1, metric=metric)
            else:
                scheduler.step_update(num_updates=self.global_step, metric=metric)
            return
        super().lr_scheduler_step(scheduler, metric)

    # ----------------------------------------------------------------- lean checkpoints
    def frozen_prefixes(self) -> list[str]:
        """State-dict prefixes of the frozen submodules (:class:`ramlico.utils.frozen.
        FrozenModule` after ``freeze()``): rebuilt from config, not stored."""
        return [f"{name}." for name in frozen_submodules(self)]

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Trainable parameters and persistent buffers outside frozen submodules."""
        frozen = tuple(self.frozen_prefixes())
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        params = {n for n, _ in self.named_parameters()}
        keep = {}
        for name, tensor in self.state_dict().items():
            if name.startswith(frozen):
                continue
            if name in params and name not in trainable:
                continue
            keep[name] = tensor
        return keep

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = self.trainable_state_dict()
        checkpoint["ramlico"] = {
            "config": self.run_config,
            "launch": self.launch,
            "label_names": self.label_names,
            "frozen_prefixes": self.frozen_prefixes(),
        }
        # Global random states (dropout, random masks): a resumed fit continues the same stream.
        checkpoint["rng_states"] = get_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        expected = set(self.trainable_state_dict())
        missing = sorted(expected - set(checkpoint["state_dict"]))
        if missing:
            raise KeyError(
                f"checkpoint lacks {len(missing)} trainable tensors of {type(self).__name__}, "
                f"e.g. {missing[:5]}; it was written by a different model configuration"
            )
        unexpected = sorted(set(checkpoint["state_dict"]) - set(self.state_dict()))
        if unexpected:
            raise KeyError(f"checkpoint has tensors this model lacks: {unexpected[:5]}")
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        if fitting and "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
