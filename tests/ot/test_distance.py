"""Tests of ``ramlico.ot.entropic_ot_value``: the value of entropic OT and its envelope gradient
(dW/dC = T*, dW/dreg = -H(T*); docs/sinkhorn.md, "Gradients"), checked by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ot_testing import F64

from ramlico.ot import entropic_ot_value, sinkhorn

# Solve to a marginal error of 1e-14 so the value is accurate to ~1e-14: a central difference
# with step 1e-4 then has round-off ~1e-10 and truncation ~h^2 |W'''| ~ 1e-8 / reg^2.
TIGHT = dict(tol=1e-14, stop_metric="marginal_l2", max_iter=20_000)


def _problem(seed, shape=(4, 3)):
    rng = np.random.default_rng(seed)
    cost = torch.tensor(rng.uniform(0, 1, shape))
    a = torch.tensor(rng.dirichlet(np.ones(shape[-2])))
    b = torch.tensor(rng.dirichlet(np.ones(shape[-1])))
    return cost, a, b


@pytest.mark.parametrize("reg", [0.1, 0.5])
@pytest.mark.parametrize("order", ["rows_first", "cols_first"])
def test_gradient_wrt_cost_is_the_plan_and_matches_finite_differences(reg, order):
    cost, a, b = _problem(40)
    cost.requires_grad_(True)
    value = entropic_ot_value(cost, reg, a, b, order=order, **TIGHT)
    (grad,) = torch.autograd.grad(value, cost)
    plan = sinkhorn(cost.detach(), a, b, reg, order=order, **TIGHT).plan
    torch.testing.assert_close(grad, plan, rtol=0, atol=1e-15)  # sg(T) by construction
    h = 1e-4
    fd = torch.zeros_like(plan)
    with torch.no_grad():
        for i in range(cost.shape[0]):
            for j in range(cost.shape[1]):
                e = torch.zeros_like(plan)
                e[i, j] = h
                up = entropic_ot_value(cost + e, reg, a, b, order=order, **TIGHT)
                down = entropic_ot_value(cost - e, reg, a, b, order=order, **TIGHT)
                fd[i, j] = (up - down) / (2 * h)
    # The envelope theorem: dW/dC = T*, to the 1e-6 of the issue (measured ~1e-10).
    torch.testing.assert_close(grad, fd, rtol=0, atol=1e-6)


def test_gradient_wrt_reg_is_minus_the_entropy():
    cost, a, b = _problem(41)
    reg = torch.tensor(0.3, dtype=F64, requires_grad=True)
    value = entropic_ot_value(cost, reg, a, b, **TIGHT)
    (grad,) = torch.autograd.grad(value, reg)
    plan = sinkhorn(cost, a, b, 0.3, **TIGHT).plan
    torch.testing.assert_close(grad, (plan * plan.log()).sum(), rtol=0, atol=1e-15)  # -H(T*)
    h = 1e-4
    fd = (
        entropic_ot_value(cost, 0.3 + h, a, b, **TIGHT)
        - entropic_ot_value(cost, 0.3 - h, a, b, **TIGHT)
    ) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=0, atol=1e-6)  # as for the cost gradient


def test_batched_value_equals_dual_value_and_marginals_get_no_gradient():
    rng = np.random.default_rng(42)
    cost = torch.tensor(rng.uniform(0, 1, (3, 5, 4)), requires_grad=True)
    a = torch.tensor(rng.dirichlet(np.ones(5), 3), requires_grad=True)
    b = torch.tensor(rng.dirichlet(np.ones(4), 3))
    reg = torch.tensor([0.1, 0.3, 1.0], dtype=F64)
    value = entropic_ot_value(cost, reg, a, b, **TIGHT)
    assert value.shape == (3,)
    res = sinkhorn(cost.detach(), a.detach(), b, reg, **TIGHT)
    # Primal <T, C> + reg sum T log T equals the dual reg (<a, f> + <b, g>) at exact marginals.
    dual = reg * ((a.detach() * res.f).sum(-1) + (b * res.g).sum(-1))
    torch.testing.assert_close(value.detach(), dual, rtol=0, atol=1e-12)
    value.sum().backward()
    torch.testing.assert_close(cost.grad, res.plan, rtol=0, atol=1e-15)
    assert a.grad is None  # marginals are data, never differentiated


def test_value_rejects_solver_modes_it_overrides():
    cost, a, b = _problem(43)
    with pytest.raises(ValueError, match=r"always solves with grad='none' and output='plan'"):
        entropic_ot_value(cost, 0.1, a, b, grad="unrolled")
    with pytest.raises(ValueError, match=r"always solves with grad='none'"):
        entropic_ot_value(cost, 0.1, a, b, output="potentials")
