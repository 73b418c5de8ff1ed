"""torchmetrics ``Metric`` wrappers of :mod:`ramlico.metrics.functional` (docs/metrics.md).

Counting metrics (P@k, R@k, F1@k, top-k accuracy) keep summed integer states, so accumulating over
batches and over DDP processes gives exactly the one-shot result. mAP ranks images per label and
therefore keeps all scores and targets (``"cat"`` states, gathered across processes in
``compute``); for N images and C labels that is ``N * C`` scores plus ``N * C`` booleans.

Every ``compute`` returns percent values in the metric's dtype (``Metric.set_dtype``; float32 by
default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from ramlico.metrics._validation import (
    _check_empty_label_ap,
    _check_k,
    _check_multilabel,
    _check_single_label,
)
from ramlico.metrics.functional import (
    _micro_precision_recall_f1,
    _percent,
    _topk_label_counts,
    _true_label_rank,
    mean_average_precision,
)

__all__ = ["MeanAveragePrecision", "MultiLabelMetrics", "MultiLabelTopK", "TopKAccuracy"]


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or len(set(ks)) != len(ks):
        raise ValueError(f"ks must be a non-empty sequence of distinct positive ints, got {ks}")
    for k in ks:
        _check_k(k)
    return ks


class MultiLabelTopK(Metric):
    """Streaming micro P@k, R@k, F1@k in percent (docs/metrics.md).

    States (summed over batches and processes): ``tp`` true positives, ``n_pred = N k`` predictions,
    ``n_pos`` positives; ``P@k = tp / n_pred``, ``R@k = tp / n_pos``, ``F1@k = 2PR / (P + R)``.
    See :func:`ramlico.metrics.functional.topk_precision_recall_f1` for the prediction and tie rule.

    Args:
        k: labels predicted per image (``k <= C`` is checked at ``update``).
        **kwargs: passed to ``torchmetrics.Metric``.

    ``update(scores, targets)``: ``scores`` ``(B, C)`` real, ``targets`` ``(B, C)`` in {1, 0, -1}.
    ``compute()`` returns ``{"P@k", "R@k", "F1@k"}`` as 0-d tensors; with no positive at all it
    warns (``MetricWarning``) and R@k = F1@k = 0.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    tp: Tensor
    n_pred: Tensor
    n_pos: Tensor

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_k(k)
        self.k = k
        for name in ("tp", "n_pred", "n_pos"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        """Add one batch: ``scores`` ``(B, C)``, ``targets`` ``(B, C)`` in {1, 0, -1}."""
        scores, targets = _check_multilabel(scores, targets)
        _check_k(self.k, scores.shape[1])
        tp, _, _ = _topk_label_counts(scores, targets, self.k)
        self.tp += tp.sum()
        self.n_pred += scores.shape[0] * self.k
        self.n_pos += targets.sum()

    def compute(self) -> dict[str, Tensor]:
        """``{"P@k", "R@k", "F1@k"}`` in percent."""
        values = _micro_precision_recall_f1(self.tp, self.n_pred, self.n_pos)
        names = (f"P@{self.k}", f"R@{self.k}", f"F1@{self.k}")
        return {name: value.to(self.dtype) for name, value in zip(names, values, strict=True)}


class MeanAveragePrecision(Metric):
    """Streaming label-wise, tie-aware mAP in percent (docs/metrics.md, "mAP").

    Keeps every batch's scores and (boolean) targets and computes
    :func:`ramlico.metrics.functional.mean_average_precision` on their concatenation, gathered
    across processes under DDP (``dist_reduce_fx="cat"``).

    Args:
        empty_label_ap: ``"zero"`` (labels without positives count as AP 0, the literature's
            convention) or ``"skip"`` (mean over labels with positives).
        **kwargs: passed to ``torchmetrics.Metric``.

    ``update(scores, targets)``: ``(B, C)`` each, C fixed across batches. ``compute()`` returns a
    0-d tensor.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    scores: list[Tensor]
    targets: list[Tensor]

    def __init__(self, empty_label_ap: str = "zero", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_empty_label_ap(empty_label_ap)
        self.empty_label_ap = empty_label_ap
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        """Store one batch: ``scores`` ``(B, C)``, ``targets`` ``(B, C)`` in {1, 0, -1}."""
        scores, targets = _check_multilabel(scores, targets)
        if self.scores and self.scores[0].shape[1] != scores.shape[1]:
            raise ValueError(
                f"scores has {scores.shape[1]} labels but earlier batches had "
                f"{self.scores[0].shape[1]}; call reset() before evaluating another label set"
            )
        self.scores.append(scores)
        self.targets.append(targets)

    def compute(self) -> Tensor:
        """mAP in percent, a 0-d tensor."""
        scores, targets = dim_zero_cat(self.scores), dim_zero_cat(self.targets)
        return mean_average_precision(scores, targets, self.empty_label_ap).to(self.dtype)


class MultiLabelMetrics(MetricCollection):
    """The multi-label evaluation of RAM's tables: P@k, R@k, F1@k for each k, and mAP.

    A ``MetricCollection`` of one :class:`MultiLabelTopK` per k (named ``top{k}``) and one
    :class:`MeanAveragePrecision` (named ``mAP``). ``update(scores, targets)`` feeds all of them;
    ``compute()`` returns one flat dict, e.g. ``{"P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5",
    "mAP"}`` of 0-d percent tensors, with ``prefix``/``postfix`` added to each key. Log it with
    ``self.log_dict(metrics.compute())`` at epoch end (the members return dicts, so Lightning's
    ``log_dict(metrics)`` shortcut does not apply).

    Args:
        ks: the k values, distinct positive ints.
        map: also compute mAP (stores all scores; turn off when only P/R/F1 are needed).
        empty_label_ap: mAP mode for labels without positives, ``"zero"`` or ``"skip"``.
        prefix: prepended to every key, e.g. ``"val/"``.
        postfix: appended to every key.
    """

    def __init__(
        self,
        ks: Sequence[int] = (3, 5),
        map: bool = True,
        empty_label_ap: str = "zero",
        prefix: str | None = None,
        postfix: str | None = None,
    ) -> None:
        ks = _check_ks(ks)
        metrics: dict[str, Metric | MetricCollection] = {f"top{k}": MultiLabelTopK(k) for k in ks}
        if map:
            metrics["mAP"] = MeanAveragePrecision(empty_label_ap)
        else:
            _check_empty_label_ap(empty_label_ap)
        super().__init__(metrics, prefix=prefix, postfix=postfix, compute_groups=False)


class TopKAccuracy(Metric):
    """Streaming single-label top-k accuracy in percent for several k (docs/metrics.md).

    States (summed): ``correct[i]`` images whose true class ranks in the top ``ks[i]`` (ties by
    ascending class index), ``total`` images.

    Args:
        ks: distinct positive ints; ``max(ks) <= C`` is checked at ``update``.
        **kwargs: passed to ``torchmetrics.Metric``.

    ``update(scores, labels)``: ``scores`` ``(B, C)`` real, ``labels`` ``(B,)`` int in ``[0, C)``.
    ``compute()`` returns ``{"top1": ..., "top5": ...}`` (one key per k) as 0-d tensors.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    correct: Tensor
    total: Tensor

    def __init__(self, ks: Sequence[int] = (1, 5), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ks = _check_ks(ks)
        zeros = torch.zeros(len(self.ks), dtype=torch.long)
        self.add_state("correct", default=zeros, dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        """Add one batch: ``scores`` ``(B, C)``, ``labels`` ``(B,)`` integer class indices."""
        scores, labels = _check_single_label(scores, labels)
        _check_k(max(self.ks), scores.shape[1], what="classes")
        rank = _true_label_rank(scores, labels)
        ks = torch.tensor(self.ks, device=rank.device)
        self.correct += (rank.unsqueeze(1) < ks).sum(0)
        self.total += labels.numel()

    def compute(self) -> dict[str, Tensor]:
        """``{"top{k}": accuracy}`` in percent for each k."""
        accuracy = _percent(self.correct, self.total)
        return {f"top{k}": accuracy[i].to(self.dtype) for i, k in enumerate(self.ks)}
