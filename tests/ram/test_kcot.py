"""KCOT: marginals, equality with POT on the transformed problem, teacher invariances and effect."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

from ramlico.modules.kcot import (
    KCOTConfig,
    kcot_plan,
    label_presence_marginal,
    region_label_cost,
    teacher_plan,
)
from ramlico.ot import SolverOptions


def _solved(tol: float | None, max_iter: int) -> KCOTConfig:
    """The reference KCOT with a tighter / fixed-length Sinkhorn (same eps 0.1)."""
    return KCOTConfig(solver=SolverOptions(reg=0.1, tol=tol, max_iter=max_iter, stop_rule="all"))


def _sim(b=2, n=12, c=5, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, c, generator=g) * 0.4 + 0.1  # CLIP-like cosine range


def _targets(b=2, c=5) -> torch.Tensor:
    y = torch.zeros(b, c)
    y[0, [0, 2]] = 1
    y[1, [4]] = 1
    return y


def test_cost_and_marginal_by_hand():
    s = torch.tensor([[[0.2, 0.3], [0.1, 0.1]]])
    c0 = region_label_cost(s)
    # region 0: softmax(100 * [0.2, 0.3]) = [1, e^10] / (1 + e^10)
    assert c0[0, 0, 0].item() == pytest.approx(1 - 1 / (1 + np.exp(10.0)), 1e-6)
    assert c0[0, 1, 0].item() == pytest.approx(0.5)  # equal similarities: softmax 1/2
    u = label_presence_marginal(s)
    # max over labels: 0.3 and 0.1 -> softmax([3, 1])
    assert u[0, 0].item() == pytest.approx(np.exp(3) / (np.exp(3) + np.exp(1)), 1e-6)


def test_plan_columns_sum_to_one_over_c_and_rows_to_u():
    s = _sim()
    plan = kcot_plan(s, _solved(tol=1e-9, max_iter=2000))
    torch.testing.assert_close(plan.sum(1), torch.full((2, 5), 0.2), rtol=0, atol=1e-6)
    torch.testing.assert_close(plan.sum(2), label_presence_marginal(s), rtol=0, atol=1e-6)
    # the reference stop rule: columns exact on exit, rows within its tolerance
    fast = kcot_plan(s)
    torch.testing.assert_close(fast.sum(1), torch.full((2, 5), 0.2), rtol=0, atol=1e-6)


def test_training_plan_equals_pot_on_the_transformed_cost():
    s, y = _sim(), _targets()
    p = teacher_plan(_sim(seed=1), y)
    plan = kcot_plan(s, _solved(tol=None, max_iter=3000), teacher=p)
    c0 = region_label_cost(s).double()
    u = label_presence_marginal(s).double()
    for i in range(2):
        m = (c0[i] - 0.05 * torch.log(p[i].double())).numpy()
        ref = ot.sinkhorn(
            u[i].numpy(), np.full(5, 0.2), m, 0.15, numItermax=100000, stopThr=1e-9, warn=False
        )
        np.testing.assert_allclose(plan[i].double().numpy(), ref, rtol=0, atol=1e-7)


def test_teacher_scale_invariance_and_inference_without_teacher():
    s, y = _sim(), _targets()
    p = teacher_plan(_sim(seed=1), y)
    cfg = _solved(tol=None, max_iter=500)
    torch.testing.assert_close(kcot_plan(s, cfg, p), kcot_plan(s, cfg, 7 * p), rtol=1e-5, atol=1e-8)
    plain = kcot_plan(s, cfg)
    c0, u = region_label_cost(s).double(), label_presence_marginal(s).double()
    ref = ot.sinkhorn(
        u[0].numpy(),
        np.full(5, 0.2),
        c0[0].numpy(),
        0.1,
        numItermax=100000,
        stopThr=1e-9,
        warn=False,
    )
    np.testing.assert_allclose(plain[0].double().numpy(), ref, atol=1e-7)


def test_teacher_masking_fills_absent_labels_with_the_batch_minimum():
    st, y = _sim(seed=3), _targets()
    raw = torch.softmax(20 * torch.softmax(100 * st, -1), 1)
    p = teacher_plan(st, y)
    absent = (y == 0).unsqueeze(1).expand_as(p)
    assert torch.all(p[absent] == raw.min())
    assert torch.equal(p[~absent], raw[~absent])
    torch.testing.assert_close(p[0, :, 0].sum(), torch.tensor(1.0))  # present column: sums to 1
    per_image = teacher_plan(st, y, fill="sample_min")
    assert torch.all(per_image[1][absent[1]] == raw[1].min())
    with pytest.raises(ValueError, match="teacher fill"):
        teacher_plan(st, y, fill="zero")


def test_teacher_lowers_non_ground_truth_mass_where_it_places_the_labels():
    # one image, 6 regions, 3 labels; label 0 present. The teacher puts label 0 on region 0.
    s = torch.full((1, 6, 3), 0.3)
    s[0, :, 1] += torch.linspace(0, 0.02, 6)  # mild preferences so the plan is not uniform
    y = torch.tensor([[1.0, 0.0, 0.0]])
    st = torch.zeros(1, 6, 3)
    st[0, 0, 0] = 0.2  # teacher: label 0 lives in region 0
    p = teacher_plan(st, y)
    cfg = _solved(tol=None, max_iter=1000)
    with_t, without = kcot_plan(s, cfg, p), kcot_plan(s, cfg)
    non_gt_in_region0 = lambda t: t[0, 0, 1:].sum().item()  # noqa: E731
    assert non_gt_in_region0(with_t) < 0.5 * non_gt_in_region0(without)
    assert with_t[0, 0, 0] > 1.8 * without[0, 0, 0]  # the GT label takes that region


def test_non_finite_inputs_raise_a_named_error():
    s = _sim()
    s[0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="similarity contains NaN"):
        kcot_plan(s)
    p = teacher_plan(_sim(seed=1), _targets())
    p[1, 2, 3] = float("inf")
    with pytest.raises(FloatingPointError, match="teacher plan contains NaN"):
        kcot_plan(_sim(), teacher=p)


def test_plan_is_fp32_without_gradient_under_autocast():
    s = _sim().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plan = kcot_plan(s.bfloat16())
    assert plan.dtype == torch.float32 and not plan.requires_grad
