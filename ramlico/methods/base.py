"""Shared LightningModule plumbing: evaluation splits, metrics, lean checkpoints, eval-only guard.

Scoring contract. Every method subclasses :class:`RamlicoModule` and scores any label list::

    scores(images (B, 3, H, W), label_names [C]) -> (B, C)            ranking scores
    label_scores(images, label_names, evidence=True) -> LabelScores    + logits, region evidence

``scores`` is what metrics rank (mAP, P/R/F1@k, top-k). ``label_scores`` adds the per-label
``logits`` that calibration turns into probabilities (label-count independent, see each method)
and, where a method has it, region evidence: one non-negative heatmap per label on the model's
patch grid, ``(B, C, h, w)`` (RAM: the OT plan's label columns; CLIP zero-shot: patch-label
similarities; LICO: Grad-CAM saliency). RAM, CLIP zero-shot, CLIP-Adapter and LICO implement the
contract; methods that score a named split only (LaZSL, OTFusion: ``predict_scores(images,
split)``) are scored through it by registering the label list as a split.

Evaluation runs one dataloader per split with the label set of that split, and logs
``{stage}/{split}/{metric}`` (e.g. ``test/zsl/F1@3``): the datamodule names the test splits in
``eval_splits`` (``"zsl"``, ``"gzsl"``; ``"seen"`` for a closed-set label space) and the
validation splits in ``val_splits`` (``["seen"]`` / ``["val"]`` for a held-out part of the
training data, ``[]`` without one); it is read through its typed interface only
(:class:`ramlico.data.RamlicoDataModule`). ``validation_step``/``test_step`` return each batch's
scores, so callbacks (calibration, prediction writers) read them without a second forward.

Checkpoints hold only what cannot be rebuilt: trainable parameters and the persistent buffers of
non-frozen modules, plus the resolved run config and the label names (key ``"ramlico"``). Frozen
backbones are rebuilt from their config (hub tag, local file or seeded random init).
"""

from __future__ import annotations

import hashlib
from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import lightning as L
import torch
from timm.scheduler.scheduler import Scheduler as TimmScheduler
from torch import nn

from ramlico.data.base import RamlicoDataModule
from ramlico.data.sampling import get_rng_states, set_rng_states
from ramlico.metrics import MultiLabelMetrics, TopKAccuracy
from ramlico.utils import get_logger
from ramlico.utils.frozen import frozen_submodules

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

__all__ = ["LabelScores", "RamlicoModule", "adapt_ks"]

log = get_logger(__name__)
Tensor = torch.Tensor


@dataclass
class LabelScores:
    """What a method says about ``C`` labels of ``B`` images (:meth:`RamlicoModule.label_scores`).

    Attributes:
        scores: ``(B, C)`` ranking scores (the method's own output; what metrics rank).
        logits: ``(B, C)`` per-label logits that do not depend on the other labels in the list;
            calibration maps them to probabilities ``sigmoid(a * logit + b)``.
        heatmaps: ``(B, C, h, w)`` non-negative region evidence on the model's grid, or ``None``.
        panels: per image, an optional explanation picture (LaZSL's descriptor/crop panel).
    """

    scores: Tensor
    logits: Tensor
    heatmaps: Tensor | None = None
    panels: list[Any] | None = None


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
    #: True for zero-shot classifiers whose test runs write ``predictions.csv`` and
    #: ``zero_shot_metrics.json`` (:class:`ramlico.callbacks.ZeroShotWriter`, added by
    #: :meth:`configure_callbacks` when the run has none; :meth:`prediction_summary`).
    zero_shot_outputs: ClassVar[bool] = False

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
        #: Probability calibration and tag thresholds (``ramlico.predict.calibration``) fitted on
        #: a validation split; travels in the checkpoint (``ckpt["ramlico"]["calibration"]``).
        self.calibration: dict[str, Any] | None = None
        #: Transductive methods (scoring a whole split at the end of the test epoch, OTFusion):
        #: per split ``{"index" (N,), "scores" (N, C), "targets" (N,)}``, the same on every rank,
        #: for the callbacks. Inductive methods return their scores from ``test_step`` instead.
        self.epoch_outputs: dict[str, dict[str, Tensor]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = (cls.scores is not RamlicoModule.scores) or (
            cls.predict_scores is not RamlicoModule.predict_scores
        )
        if not own:
            raise TypeError(
                f"{cls.__name__} must implement scores(images, label_names) (or the split-keyed "
                "predict_scores(images, split))"
            )

    if TYPE_CHECKING:  # save_hyperparameters() always stores an AttributeDict

        @property
        def hparams(self) -> AttributeDict: ...

    # ----------------------------------------------------------------- label sets and metrics
    @property
    def datamodule(self) -> RamlicoDataModule | None:
        """The Trainer's datamodule (the typed :class:`~ramlico.data.RamlicoDataModule`), or
        ``None`` outside a Trainer run."""
        # Trainer.datamodule is set by Lightning's data connector and not declared on Trainer
        dm = self.trainer.datamodule if self._trainer is not None else None  # type: ignore[attr-defined]
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
        if stage == "predict":  # a label list to tag with; the trained label sets stay
            self.label_names["predict"] = list(dm.label_names("predict"))
            self.predict_evidence = bool(getattr(dm, "evidence", True))
            return
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
        self._updated = set()
        self.on_label_sets_ready()

    def _make_metric(self, split: str) -> MultiLabelMetrics | TopKAccuracy:
        """P/R/F1@k + mAP (multi-label) or top-1/top-5 accuracy (multi-class), k <= C."""
        wanted = self.ks if self.task == "multilabel" else (1, 5)
        ks = adapt_ks(wanted, len(self.label_names[split]), split, self.task)
        if self.task == "multiclass":
            return TopKAccuracy(ks=ks)
        return MultiLabelMetrics(ks=ks)

    def _metric(self, split: str) -> MultiLabelMetrics | TopKAccuracy:
        """The metric of ``split`` (built by :meth:`_make_metric`)."""
        return cast("MultiLabelMetrics | TopKAccuracy", self.metrics[split])

    def on_label_sets_ready(self) -> None:
        """Hook: the label names of every split are known (build text classifiers here)."""

    # ----------------------------------------------------------------- the scoring contract
    def scores(self, images: Tensor, label_names: Sequence[str]) -> Tensor:
        """``(B, 3, H, W)`` normalised images -> ``(B, C)`` scores over ``label_names``.

        Methods override this. The default serves split-keyed methods (``predict_scores`` only):
        the label list is registered as a split named after its content and scored as such.
        """
        names = list(label_names)
        digest = hashlib.sha1("\x1f".join(names).encode()).hexdigest()[:12]
        split = f"labels-{digest}"
        self.label_names.setdefault(split, names)
        return self.predict_scores(images, split)

    def label_scores(
        self, images: Tensor, label_names: Sequence[str], evidence: bool = True
    ) -> LabelScores:
        """Scores, calibration logits and (``evidence=True``, if the method has it) heatmaps.

        The default has no region evidence and uses the scores as logits.
        """
        s = self.scores(images, label_names)
        return LabelScores(scores=s, logits=s)

    def prediction_summary(self, split: str) -> dict[str, Any] | None:
        """The leading fields of a test run's ``zero_shot_metrics.json`` (method, dataset, model,
        ...), for the methods with ``zero_shot_outputs``; ``None`` = none for ``split``."""
        return None

    def configure_callbacks(self) -> list[L.Callback]:
        """A default :class:`~ramlico.callbacks.ZeroShotWriter` for ``zero_shot_outputs``
        methods whose run configures none (e.g. ``callbacks=none``)."""
        # imported here: ramlico.callbacks imports ramlico.predict, which imports this module
        from ramlico.callbacks.zero_shot import ZeroShotWriter

        # Trainer.callbacks is set by Lightning's callback connector, not declared on Trainer
        present = self.trainer.callbacks if self._trainer is not None else []  # type: ignore[attr-defined]
        configured = any(isinstance(c, ZeroShotWriter) for c in present)
        return [ZeroShotWriter()] if self.zero_shot_outputs and not configured else []

    def eval_transform(self) -> Any:
        """The model's own evaluation preprocessing (decoded PIL image -> model input), or
        ``None`` to keep the datamodule's. Datamodules with ``uses_model_transform`` (single-label
        classification) adopt it in :meth:`setup`; zero-shot methods return their backbone's."""
        return None

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        """``(B, 3, H, W)`` images -> ``(B, C)`` scores over ``self.label_names[split]``."""
        return self.scores(images, self.label_names[split])

    def split_scores(self, images: Tensor, split: str) -> LabelScores:
        """:class:`LabelScores` (no evidence) over the labels of evaluation split ``split``."""
        if type(self).predict_scores is not RamlicoModule.predict_scores:
            s = self.predict_scores(images, split)  # split-keyed method (LaZSL, OTFusion)
            return LabelScores(scores=s, logits=s)
        with torch.no_grad():
            return self.label_scores(images, self.label_names[split], evidence=False)

    def _eval_step(self, batch: Any, dataloader_idx: int, splits: Sequence[str]) -> dict:
        images, targets = batch[0], batch[1]
        split = splits[dataloader_idx]
        out = self.split_scores(images, split)
        scores = out.scores
        expected = (
            targets.shape if self.task == "multilabel" else (*targets.shape, scores.shape[-1])
        )
        if scores.shape != expected:
            raise ValueError(
                f"split '{split}': scores {tuple(scores.shape)} vs targets {tuple(targets.shape)}"
            )
        self._metric(split).update(scores.float(), targets)
        self._updated.add(split)
        return {"split": split, "scores": scores.detach(), "logits": out.logits.detach(),
                "targets": targets}  # fmt: skip

    def _eval_epoch_end(self, stage: str, splits: Sequence[str]) -> None:
        for split in splits:
            if split not in self._updated:
                continue
            metric = self._metric(split)
            values = metric.compute()
            # torchmetrics has already reduced the states over all ranks, so every rank holds the
            # same values; sync_dist=True only makes Lightning's epoch-level mean of these equal
            # values explicit (and avoids its per-key "use sync_dist=True" warning under DDP).
            self.log_dict({f"{stage}/{split}/{k}": v for k, v in values.items()}, sync_dist=True)
            metric.reset()
        self._updated = set()

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``(images, index)`` -> ``{"index", "out": LabelScores}`` over the predict labels."""
        images, index = batch[0], batch[1]
        evidence = getattr(self, "predict_evidence", True)
        out = self.label_scores(images, self.label_names["predict"], evidence=evidence)
        return {"index": index, "out": out}

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self._eval_step(batch, dataloader_idx, self.val_splits)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict | None:
        return self._eval_step(batch, dataloader_idx, self.eval_splits)

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
            "calibration": self.calibration,
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
        self.calibration = (checkpoint.get("ramlico") or {}).get("calibration")
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        if fitting and "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
