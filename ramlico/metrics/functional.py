"""Ranking metrics as plain functions of score tensors (docs/metrics.md).

Multi-label: micro top-k precision / recall / F1 (P@k, R@k, F1@k), [C-RAM]'s per-class CP / CR / CF1
and the label-wise, tie-aware mAP. Single-label: top-k accuracy. Every value is returned in percent
(x100), as the papers report it, in the floating dtype of ``scores`` promoted to at least float32;
the arithmetic runs in float64 on the device of the inputs.

Shapes: ``N`` images, ``C`` labels (or classes). ``scores`` is any real ``(N, C)`` tensor (logits,
probabilities, OT scores: only the order matters); ``targets`` is ``(N, C)`` with entries 1
(positive), 0 or -1 (negative; the legacy -1 is mapped to 0).

Ranking rule (docs/metrics.md): within an image, labels are ordered by descending score and
ties by ascending label index, so ``top_k`` is deterministic.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ramlico.metrics._validation import (
    EMPTY_LABEL_AP_MODES,
    _check_empty_label_ap,
    _check_k,
    _check_multilabel,
    _check_single_label,
    _out_dtype,
)

__all__ = [
    "EMPTY_LABEL_AP_MODES",
    "MetricWarning",
    "average_precision_per_label",
    "mean_average_precision",
    "per_class_precision_recall_f1",
    "topk_accuracy",
    "topk_precision_recall_f1",
]


class MetricWarning(UserWarning):
    """Warned when a metric is undefined on the data given and its documented fallback is returned.

    Cases: R@k when the evaluated set has no positive label at all (returns 0), and mAP with
    ``empty_label_ap="skip"`` when no label has a positive (returns 0). It is its own class so that
    callers can filter exactly this warning.
    """


def _percent(count: Tensor, total: Tensor) -> Tensor:
    """``100 * count / total`` in float64; 0 where ``total = 0`` (then ``count`` is 0 too)."""
    return 100 * (count.to(torch.float64) / total.to(torch.float64).clamp_min(1))


def _f1(precision: Tensor, recall: Tensor) -> Tensor:
    """Harmonic mean ``2 P R / (P + R)``, 0 where ``P + R = 0``."""
    total = precision + recall
    return torch.where(total > 0, 2 * precision * recall / torch.where(total > 0, total, 1.0), 0.0)


def _topk_label_counts(scores: Tensor, targets: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-label ``(tp, fp, fn)``, each ``(C,)`` int64, when every image predicts its top-k labels.

    Expects validated inputs (``targets`` bool). The stable descending sort keeps equal scores in
    ascending label order, which is the tie rule of docs/metrics.md.
    """
    top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    predicted = torch.zeros_like(targets).scatter_(1, top, True)
    tp = (predicted & targets).sum(0)
    return tp, predicted.sum(0) - tp, targets.sum(0) - tp


def _micro_precision_recall_f1(
    tp: Tensor, n_pred: Tensor, n_pos: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``P = tp / n_pred``, ``R = tp / n_pos``, F1, in percent (float64, 0-d).

    ``tp`` is 0 whenever a denominator is 0, so dividing by ``max(denominator, 1)`` returns the
    documented fallback 0 without a NaN. ``n_pos = 0`` warns (R@k is undefined there).
    """
    tp, n_pred, n_pos = (x.to(torch.float64) for x in (tp, n_pred, n_pos))
    if bool(n_pos == 0):
        warnings.warn(
            "no positive label in the evaluated set: R@k is undefined and is returned as 0 "
            "(docs/metrics.md); check that the ground truth is not empty",
            MetricWarning,
            stacklevel=3,
        )
    precision = tp / n_pred.clamp_min(1)
    recall = tp / n_pos.clamp_min(1)
    return 100 * precision, 100 * recall, 100 * _f1(precision, recall)


def topk_precision_recall_f1(
    scores: Tensor, targets: Tensor, k: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Micro ("overall") P@k, R@k and F1@k in percent (docs/metrics.md; RAM Tables 1-2).

    Each image predicts exactly its k highest-scoring labels (ties: ascending label index)::

        TP = sum_ij Yhat_ij Y_ij,  P@k = TP / (N k),  R@k = TP / sum_ij Y_ij,
        F1@k = 2 P@k R@k / (P@k + R@k)  (0 if both are 0)

    R@k is not the mean of per-image recalls. Images without positives are kept (k false
    positives each). Identity: ``R@k = k P@k / g``, ``g`` the mean number of positives per image.

    Args:
        scores: ``(N, C)`` real scores.
        targets: ``(N, C)`` ground truth in {1, 0, -1}; -1 means negative.
        k: number of labels predicted per image, ``1 <= k <= C``.

    Returns:
        ``(P@k, R@k, F1@k)``, 0-d tensors in percent.

    Raises:
        ValueError: bad shapes, target values, NaN scores, or ``k > C``.

    Warns:
        MetricWarning: no positive at all; R@k (and F1@k) are returned as 0.

    Example (metrics.md example D, a tie resolved towards label 0):
        >>> topk_precision_recall_f1(torch.tensor([[0.5, 0.5, 0.1]]), torch.tensor([[0, 1, 0]]), 1)
        (tensor(0.), tensor(0.), tensor(0.))
    """
    scores, targets = _check_multilabel(scores, targets)
    _check_k(k, scores.shape[1])
    tp, _, _ = _topk_label_counts(scores, targets, k)
    n_pred = torch.tensor(scores.shape[0] * k, device=scores.device)
    values = _micro_precision_recall_f1(tp.sum(), n_pred, targets.sum())
    dtype = _out_dtype(scores)
    return values[0].to(dtype), values[1].to(dtype), values[2].to(dtype)


def per_class_precision_recall_f1(
    scores: Tensor, targets: Tensor, k: int
) -> tuple[Tensor, Tensor, Tensor]:
    """[C-RAM]'s per-class CP, CR, CF1 at top-k, in percent (docs/metrics.md; logged, not reported).

    With the top-k prediction rule of :func:`topk_precision_recall_f1` and per-label counts
    ``tp_j, fp_j, fn_j``::

        p_j = tp_j / (tp_j + fp_j),  r_j = tp_j / (tp_j + fn_j)   (both 0 when tp_j = 0)
        CP = mean_j p_j,  CR = mean_j r_j,  CF1 = 2 CP CR / (CP + CR)  (0 if both are 0)

    This is not DualCoOp's ``F_C`` (a mean of per-label F1s).

    Args:
        scores: ``(N, C)`` real scores.
        targets: ``(N, C)`` ground truth in {1, 0, -1}.
        k: labels predicted per image, ``1 <= k <= C``.

    Returns:
        ``(CP, CR, CF1)``, 0-d tensors in percent.

    Raises:
        ValueError: bad shapes, target values, NaN scores, or ``k > C``.
    """
    scores, targets = _check_multilabel(scores, targets)
    _check_k(k, scores.shape[1])
    tp, fp, fn = (x.to(torch.float64) for x in _topk_label_counts(scores, targets, k))
    precision = torch.where(tp > 0, tp / (tp + fp).clamp_min(1), 0.0).mean()
    recall = torch.where(tp > 0, tp / (tp + fn).clamp_min(1), 0.0).mean()
    f1 = _f1(precision, recall)
    dtype = _out_dtype(scores)
    return (100 * precision).to(dtype), (100 * recall).to(dtype), (100 * f1).to(dtype)


def _average_precision(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Tie-aware AP of every column as a fraction (float64 ``(C,)``) and the empty mask ``(C,)``.

    Sorting a column by descending score, a tie segment ends at the last position of equal
    scores; every positive contributes ``1 / n_pos`` recall at the precision of its segment's end,
    ``P(t) = tp_cum(end) / (end + 1)``. This is sklearn's step-wise AP over distinct thresholds.
    """
    n = scores.shape[0]
    sorted_scores, order = torch.sort(scores, dim=0, descending=True)
    hits = targets.gather(0, order).to(torch.float64)
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=scores.device).unsqueeze(1)
    precision = hits.cumsum(0) / ranks
    is_end = torch.ones_like(targets)
    is_end[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    position = torch.arange(n, device=scores.device).unsqueeze(1).expand_as(is_end)
    # Non-ends get n - 1; a reversed cumulative min then yields the first end at or after p.
    end = torch.where(is_end, position, n - 1).flip(0).cummin(0).values.flip(0)
    n_pos = hits.sum(0)
    ap = (hits * precision.gather(0, end)).sum(0) / n_pos.clamp_min(1)
    return ap, n_pos == 0


def average_precision_per_label(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Tie-aware average precision of every label (column), in percent (docs/metrics.md, "mAP").

    For label j, images are ranked by ``scores[:, j]``; summing over distinct thresholds t in
    descending order::

        AP_j = sum_t (R_j(t) - R_j(t-)) P_j(t)

    with P, R the precision and recall of "positive iff score >= t". This equals
    ``sklearn.metrics.average_precision_score`` and, without ties, the sort-based
    ``(1 / n_pos) sum_{positive ranks r} (#positives in ranks 1..r) / r``. Labels without positives
    get AP 0. Per-image AP (MiAP, a diagnostic only) is ``average_precision_per_label(S.T, Y.T)``.

    Args:
        scores: ``(N, C)`` real scores.
        targets: ``(N, C)`` ground truth in {1, 0, -1}.

    Returns:
        ``(ap, empty)``: ``ap`` ``(C,)`` in percent, ``empty`` ``(C,)`` bool, True for labels
        without any positive image (``int(empty.sum())`` is the count to log).

    Raises:
        ValueError: bad shapes, target values or NaN scores.

    Example (metrics.md example G, a tie between a positive and a negative image):
        >>> ap, empty = average_precision_per_label(
        ...     torch.tensor([[0.5], [0.5], [0.1]]), torch.tensor([[1], [0], [1]]))
        >>> round(ap.item(), 4), empty.tolist()
        (58.3333, [False])
    """
    scores, targets = _check_multilabel(scores, targets)
    ap, empty = _average_precision(scores, targets)
    return 100 * ap.to(_out_dtype(scores)), empty


def mean_average_precision(scores: Tensor, targets: Tensor, empty_label_ap: str = "zero") -> Tensor:
    """Label-wise mAP in percent: the mean of :func:`average_precision_per_label` (docs/metrics.md).

    ``mAP = (1 / C) sum_j AP_j`` with ``AP_j = 0`` for labels without positives
    (``empty_label_ap="zero"``, as LESA, BiAM and DualCoOp); ``"skip"`` averages over the labels
    with at least one positive only.

    Args:
        scores: ``(N, C)`` real scores.
        targets: ``(N, C)`` ground truth in {1, 0, -1}.
        empty_label_ap: ``"zero"`` (default) or ``"skip"``.

    Returns:
        0-d tensor, mAP in percent.

    Raises:
        ValueError: bad shapes, target values, NaN scores, or an unknown ``empty_label_ap``.

    Warns:
        MetricWarning: ``"skip"`` and no label has a positive; 0 is returned.
    """
    _check_empty_label_ap(empty_label_ap)
    scores, targets = _check_multilabel(scores, targets)
    ap, empty = _average_precision(scores, targets)
    if empty_label_ap == "skip":
        if bool(empty.all()):
            warnings.warn(
                "empty_label_ap='skip' but no label has a positive image: mAP is undefined and "
                "is returned as 0; check the ground truth",
                MetricWarning,
                stacklevel=2,
            )
            return ap.new_zeros(()).to(_out_dtype(scores))
        ap = ap[~empty]
    return 100 * ap.mean().to(_out_dtype(scores))


def _true_label_rank(scores: Tensor, labels: Tensor) -> Tensor:
    """0-based rank ``(N,)`` of the true class: higher scores, plus equal scores at lower index."""
    true_score = scores.gather(1, labels.unsqueeze(1))
    index = torch.arange(scores.shape[1], device=scores.device)
    tied_before = (scores == true_score) & (index < labels.unsqueeze(1))
    return (scores > true_score).sum(1) + tied_before.sum(1)


def topk_accuracy(scores: Tensor, labels: Tensor, k: int) -> Tensor:
    """Single-label top-k accuracy in percent (docs/metrics.md, "Top-k accuracy")::

        top-k = (100 / N) sum_i 1[y_i in top_k(S_i)]

    with ties in ``S_i`` broken by ascending class index.

    Args:
        scores: ``(N, C)`` real scores.
        labels: ``(N,)`` integer class indices in ``[0, C)``.
        k: ``1 <= k <= C``.

    Returns:
        0-d tensor, accuracy in percent.

    Raises:
        ValueError: bad shapes or labels, NaN scores, or ``k > C``.
        TypeError: non-integer labels.

    Example (tie between classes 0 and 1; class 0 ranks first):
        >>> topk_accuracy(torch.tensor([[0.5, 0.5, 0.1]]), torch.tensor([1]), 1)
        tensor(0.)
    """
    scores, labels = _check_single_label(scores, labels)
    _check_k(k, scores.shape[1], what="classes")
    correct = (_true_label_rank(scores, labels) < k).sum()
    return _percent(correct, correct.new_tensor(scores.shape[0])).to(_out_dtype(scores))
