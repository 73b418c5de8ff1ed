"""Tests of ramlico.metrics.functional against metrics.md's worked examples A-H and references.

Expected values are the fractions printed in metrics.md (6 decimals); the functions return percent,
so every check divides by 100 and uses abs=1e-6, the rounding of the printed numbers.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score
from torchmetrics.classification import MultilabelAveragePrecision

from ramlico.metrics.functional import (
    MetricWarning,
    _topk_label_counts,
    average_precision_per_label,
    mean_average_precision,
    per_class_precision_recall_f1,
    topk_accuracy,
    topk_precision_recall_f1,
)

pytestmark = pytest.mark.filterwarnings("error::ramlico.metrics.functional.MetricWarning")

F64 = torch.float64
S_A = torch.tensor(
    [
        [0.80, 0.15, 0.60, 0.05, 0.30],
        [0.10, 0.90, 0.20, 0.70, 0.40],
        [0.50, 0.45, 0.35, 0.25, 0.55],
    ],
    dtype=F64,
)
Y_A = torch.tensor([[1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]])
S_C = torch.tensor([[0.9, 0.6, 0.2], [0.3, 0.8, 0.1], [0.7, 0.1, 0.4]], dtype=F64)
Y_C = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 1]])  # image 1 and label 1 have no positive


def frac(values):
    """Percent tensor(s) -> list of fractions."""
    return [v.item() / 100 for v in values] if isinstance(values, tuple) else values.item() / 100


def random_multilabel(seed, n=60, c=7, decimals=None, p=0.3):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, c, generator=g, dtype=F64)
    if decimals is not None:  # coarse scores -> many ties
        scores = torch.round(scores, decimals=decimals)
    return scores, (torch.rand(n, c, generator=g) < p).long()


# ---- worked examples (docs/metrics.md) ----------------------------------------------
# (k, P, R, F1, CP, CR, CF1); e.g. A, k=3: TP=4, P=4/9, R=4/5, CP=mean[.5,.5,0,1,1/3]=0.466667
EXAMPLE_A = [
    (1, 0.666667, 0.4, 0.5, 0.4, 0.4, 0.4),
    (2, 0.5, 0.6, 0.545455, 0.5, 0.6, 0.545455),
    (3, 0.444444, 0.8, 0.571429, 0.466667, 0.8, 0.589474),
    (5, 0.333333, 1.0, 0.5, 0.333333, 1.0, 0.5),
]
S_B, Y_B = S_A[:, 2:], Y_A[:, 2:]  # example B: ZSL restriction to columns 2..4
EXAMPLE_B = [
    (1, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3),
    (2, 0.5, 1.0, 0.666667, 0.611111, 1, 0.758621),
]
EXAMPLE_C = [
    (1, 1 / 3, 0.5, 0.4, 0.166667, 1 / 3, 0.222222),
    (2, 1 / 3, 1, 0.5, 0.444444, 0.666667, 0.533333),
]
EXAMPLES = [(S_A, Y_A, row) for row in EXAMPLE_A]
EXAMPLES += [(S_B, Y_B, row) for row in EXAMPLE_B] + [(S_C, Y_C, row) for row in EXAMPLE_C]


@pytest.mark.parametrize("scores, targets, row", EXAMPLES)
def test_worked_examples_topk_and_per_class(scores, targets, row):
    k, *expected = row
    got = frac(topk_precision_recall_f1(scores, targets, k))
    got += frac(per_class_precision_recall_f1(scores, targets, k))
    assert got == pytest.approx(expected, abs=1e-6)


def test_example_a_k3_per_label_counts():
    tp, fp, fn = _topk_label_counts(S_A, Y_A.bool(), 3)
    assert tp.tolist() == [1, 1, 0, 1, 1]
    assert fp.tolist() == [1, 1, 1, 0, 2]
    assert fn.tolist() == [0, 0, 1, 0, 0]


def test_example_d_tie_goes_to_lower_label_index():
    scores = torch.tensor([[0.5, 0.5, 0.1]], dtype=F64)
    assert frac(topk_precision_recall_f1(scores, torch.tensor([[0, 1, 0]]), 1)) == [0, 0, 0]
    # the same tie with the positive on label 0 is a hit
    assert frac(topk_precision_recall_f1(scores, torch.tensor([[1, 0, 0]]), 1)) == [1, 1, 1]


def test_example_e_f_average_precision():
    ap, empty = average_precision_per_label(S_A, Y_A)
    assert frac(tuple(ap)) == pytest.approx([1, 1, 0.5, 1, 1 / 3], abs=1e-6)
    assert not empty.any()
    assert frac(mean_average_precision(S_A, Y_A)) == pytest.approx(0.766667, abs=1e-6)
    # per-image AP (MiAP diagnostic) is the same function on the transpose: mean 0.694444
    ap_img, _ = average_precision_per_label(S_A.T, Y_A.T)
    assert frac(tuple(ap_img)) == pytest.approx([0.833333, 1.0, 0.25], abs=1e-6)
    assert frac(ap_img.mean()) == pytest.approx(0.694444, abs=1e-6)
    ap_b, _ = average_precision_per_label(S_B, Y_B)  # example F
    assert frac(tuple(ap_b)) == pytest.approx([0.5, 1, 1 / 3], abs=1e-6)
    assert frac(mean_average_precision(S_B, Y_B)) == pytest.approx(0.611111, abs=1e-6)


def test_example_c_empty_label_zero_and_skip():
    ap, empty = average_precision_per_label(S_C, Y_C)
    assert frac(tuple(ap)) == pytest.approx([1, 0, 1], abs=1e-12)
    assert empty.tolist() == [False, True, False]
    assert frac(mean_average_precision(S_C, Y_C)) == pytest.approx(2 / 3, abs=1e-12)
    assert frac(mean_average_precision(S_C, Y_C, "skip")) == pytest.approx(1.0, abs=1e-12)


def test_example_g_ties_are_averaged_not_sorted():
    # tie-aware: 0.5 * 0.5 + 0.5 * 2/3 = 0.583333; a stable sort putting image 0 first gives 0.8333
    scores = torch.tensor([[0.5], [0.5], [0.1]], dtype=F64)
    labels = torch.tensor([[1], [0], [1]])
    assert frac(mean_average_precision(scores, labels)) == pytest.approx(0.583333, abs=1e-6)
    swapped = mean_average_precision(scores[[1, 0, 2]], labels[[1, 0, 2]])
    assert frac(swapped) == pytest.approx(0.583333, abs=1e-6)
    assert frac(swapped) == pytest.approx(average_precision_score([1, 0, 1], [0.5, 0.5, 0.1]))


S_H = torch.tensor(
    [
        [0.10, 0.50, 0.20, 0.15, 0.05],
        [0.30, 0.10, 0.25, 0.05, 0.30],
        [0.05, 0.15, 0.20, 0.40, 0.20],
        [0.60, 0.10, 0.10, 0.10, 0.10],
    ],
    dtype=F64,
)
Y_H = torch.tensor([2, 4, 3, 3])


@pytest.mark.parametrize("k, expected", [(1, 0.25), (2, 0.75), (3, 0.75), (4, 1.0), (5, 1.0)])
def test_example_h_topk_accuracy(k, expected):
    assert frac(topk_accuracy(S_H, Y_H, k)) == pytest.approx(expected, abs=1e-12)


# ---- agreement with sklearn and torchmetrics ---------------------------------------------------
@pytest.mark.parametrize("decimals", [None, 1, 0])  # none / many / almost all scores tied
@pytest.mark.parametrize("seed", [0, 1])
def test_average_precision_matches_sklearn(seed, decimals):
    scores, targets = random_multilabel(seed, decimals=decimals)
    targets[:, 0] = 0  # an empty label: AP 0 here, sklearn warns and returns 0 too
    ap, empty = average_precision_per_label(scores, targets)
    assert empty.tolist() == [True] + [False] * (scores.shape[1] - 1)
    assert ap[0].item() == 0.0
    expected = [
        average_precision_score(targets[:, j].numpy(), scores[:, j].numpy())
        for j in range(1, scores.shape[1])
    ]
    # float64 on both sides; they differ only by summation order
    np.testing.assert_allclose(ap[1:].numpy() / 100, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
def test_average_precision_matches_torchmetrics(decimals):
    scores, targets = random_multilabel(3, decimals=decimals)
    c = scores.shape[1]
    per_label = MultilabelAveragePrecision(num_labels=c, average=None, thresholds=None)
    ap, _ = average_precision_per_label(scores, targets)
    # torchmetrics returns float32 (eps 6e-8 on values <= 1), hence 1e-6
    np.testing.assert_allclose(ap.numpy() / 100, per_label(scores, targets).numpy(), atol=1e-6)
    # torchmetrics 1.9 sets AP = 0 for a label without positives (and warns), keeping it in its
    # macro mean: that is our "zero" mode
    targets[:, 2] = 0
    macro = MultilabelAveragePrecision(num_labels=c, average="macro", thresholds=None)
    with pytest.warns(UserWarning, match="No positive samples"):
        reference = macro(scores, targets).item()
    assert frac(mean_average_precision(scores, targets, "zero")) == pytest.approx(
        reference, abs=1e-6
    )


# ---- invariances and properties ----------------------------------------------------------------
def all_metrics(scores, targets, k=2):
    values = topk_precision_recall_f1(scores, targets, k) + per_class_precision_recall_f1(
        scores, targets, k
    )
    values += (
        mean_average_precision(scores, targets),
        mean_average_precision(scores, targets, "skip"),
    )
    return torch.stack(values)


@pytest.mark.parametrize("decimals", [None, 1])
def test_image_permutation_invariance(decimals):
    scores, targets = random_multilabel(4, decimals=decimals)
    targets[5] = 0  # an image without positives
    perm = torch.randperm(scores.shape[0], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        all_metrics(scores[perm], targets[perm]), all_metrics(scores, targets)
    )


def test_label_permutation_invariance_without_ties():
    scores, targets = random_multilabel(5)
    perm = torch.randperm(scores.shape[1], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        all_metrics(scores[:, perm], targets[:, perm]), all_metrics(scores, targets)
    )
    labels = torch.randint(0, scores.shape[1], (scores.shape[0],), generator=torch.Generator())
    inverse = torch.argsort(perm)  # class j moves to column inverse[j]
    for k in (1, 3):
        assert topk_accuracy(scores[:, perm], inverse[labels], k) == topk_accuracy(
            scores, labels, k
        )


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 12), c=st.integers(1, 8), k_frac=st.floats(0, 1), seed=st.integers(0, 2**16)
)
def test_recall_identity_and_per_image_precision(n, c, k_frac, seed):
    """RAM's identity R@k = k P@k / g, g = mean positives per image; P@k = mean per-image P."""
    k = 1 + int(k_frac * (c - 1))
    scores, targets = random_multilabel(seed, n, c, decimals=1, p=0.4)
    targets[0, 0] = 1  # at least one positive, so R@k is defined
    p, r, f1 = topk_precision_recall_f1(scores, targets, k)
    g = targets.sum().item() / n
    assert r.item() == pytest.approx(k * p.item() / g, rel=1e-12)
    top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    per_image = targets.gather(1, top).sum(1).to(F64) / k
    assert p.item() == pytest.approx(100 * per_image.mean().item(), rel=1e-12)
    harmonic = 2 * p.item() * r.item() / (p.item() + r.item()) if p.item() > 0 else 0.0
    assert f1.item() == pytest.approx(harmonic, rel=1e-12)


def test_minus_one_targets_mean_negative():
    legacy = torch.where(Y_A == 1, 1, -1)
    torch.testing.assert_close(all_metrics(S_A, legacy), all_metrics(S_A, Y_A))
    torch.testing.assert_close(all_metrics(S_A, Y_A.bool()), all_metrics(S_A, Y_A))


def test_output_dtype_follows_scores():
    assert topk_precision_recall_f1(S_A.float(), Y_A, 3)[0].dtype == torch.float32
    assert mean_average_precision(S_A.half(), Y_A).dtype == torch.float32
    assert mean_average_precision(S_A, Y_A).dtype == torch.float64
    assert frac(mean_average_precision((S_A * 100).long(), Y_A)) == pytest.approx(
        0.766667, abs=1e-6
    )


# ---- degenerate inputs and errors --------------------------------------------------------------
def test_no_positives_warns_and_recall_is_zero():
    targets = torch.zeros_like(Y_A)
    with pytest.warns(MetricWarning, match="no positive label"):
        p, r, f1 = topk_precision_recall_f1(S_A, targets, 2)
    assert (p.item(), r.item(), f1.item()) == (0.0, 0.0, 0.0)
    assert mean_average_precision(S_A, targets).item() == 0.0  # "zero": every AP is 0
    with pytest.warns(MetricWarning, match="no label has a positive"):
        assert mean_average_precision(S_A, targets, "skip").item() == 0.0


@pytest.mark.parametrize("fn", [topk_precision_recall_f1, per_class_precision_recall_f1])
def test_k_larger_than_labels_raises(fn):
    with pytest.raises(ValueError, match="k=6 exceeds the number of labels C=5"):
        fn(S_A, Y_A, 6)
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        fn(S_A, Y_A, 0)


def test_topk_accuracy_errors():
    with pytest.raises(ValueError, match="k=6 exceeds the number of classes C=5"):
        topk_accuracy(S_H, Y_H, 6)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, C\) = \[0, 5\), got 5"):
        topk_accuracy(S_H, torch.tensor([0, 1, 2, 5]), 1)
    with pytest.raises(TypeError, match="integer class indices"):
        topk_accuracy(S_H, Y_H.double(), 1)


def test_invalid_multilabel_inputs_raise():
    with pytest.raises(ValueError, match="only 1 .positive., 0 or -1 .negative., got 2"):
        mean_average_precision(S_A, Y_A * 2)
    with pytest.raises(ValueError, match="same shape as scores"):
        topk_precision_recall_f1(S_A, Y_A[:, :4], 1)
    with pytest.raises(ValueError, match="non-empty 2-D tensor"):
        mean_average_precision(S_A[0], Y_A[0])
    with pytest.raises(ValueError, match="NaN"):
        mean_average_precision(torch.full_like(S_A, float("nan")), Y_A)
    with pytest.raises(ValueError, match="empty_label_ap must be one of"):
        mean_average_precision(S_A, Y_A, "ignore")


def test_infinite_scores_rank_normally():
    scores = S_A.clone()
    scores[0, 4], scores[2, 2] = float("inf"), float("-inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ap, _ = average_precision_per_label(scores, Y_A)
    expected = [average_precision_score(Y_A[:, j], scores[:, j].clamp(-1e9, 1e9)) for j in range(5)]
    np.testing.assert_allclose(ap.numpy() / 100, expected, atol=1e-12)
