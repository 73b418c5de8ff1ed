"""Tests of ``ramlico.ot.costs``: cosine and squared-Euclidean costs against hand computations, and
RAM's KCOT transform (docs/sinkhorn.md) against POT and its defining objective."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from ot_testing import F64, PROPERTY_SETTINGS, cases

from ramlico.ot import cosine_cost, kcot_cost, kcot_log_kernel, sinkhorn, squared_euclidean_cost

CONVERGED = dict(tol=1e-11, stop_metric="marginal_l2", max_iter=20_000)


# ---------------------------------------------------------------------------- geometric costs


def test_cosine_cost_hand_computed():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    y = torch.tensor([[1.0, 1.0], [0.0, -3.0], [3.0, 0.0]], dtype=F64)
    # cos(x0, .) = [1/sqrt2, 0, 1], cos(x1, .) = [1/sqrt2, -1, 0]; C = 1 - cos.
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1 - r, 1.0, 0.0], [1 - r, 2.0, 1.0]], dtype=F64)
    torch.testing.assert_close(cosine_cost(x, y), expected, rtol=0, atol=1e-15)


def test_cosine_cost_broadcasts_and_handles_zero_vectors():
    rng = np.random.default_rng(30)
    x = torch.tensor(rng.normal(size=(2, 3, 4)))
    y = torch.tensor(rng.normal(size=(1, 5, 4)))
    c = cosine_cost(x, y)
    for i in range(2):
        for n in range(3):
            for m in range(5):
                cos = torch.dot(x[i, n], y[0, m]) / (x[i, n].norm() * y[0, m].norm())
                torch.testing.assert_close(c[i, n, m], 1 - cos, rtol=0, atol=1e-14)
    # A zero vector has no direction: its cost is 1 to everything (no NaN from 0 / 0).
    zero = cosine_cost(torch.zeros(1, 4, dtype=F64), y[0])
    torch.testing.assert_close(zero, torch.ones(1, 5, dtype=F64), rtol=0, atol=0)


def test_squared_euclidean_cost_hand_computed():
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    y = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=F64)
    # |(0,0)-(3,4)|^2 = 25, |(0,0)-(1,0)|^2 = 1, |(1,2)-(3,4)|^2 = 8, |(1,2)-(1,0)|^2 = 4.
    expected = torch.tensor([[25.0, 1.0], [8.0, 4.0]], dtype=F64)
    torch.testing.assert_close(squared_euclidean_cost(x, y), expected, rtol=0, atol=1e-13)
    # normalize=True (LICO): unit vectors, 2 - 2 cos. x = (1, 0), y = (0, 1), (-1, 0) -> 2, 4.
    xn = torch.tensor([[2.0, 0.0]], dtype=F64)
    yn = torch.tensor([[0.0, 5.0], [-1.0, 0.0]], dtype=F64)
    torch.testing.assert_close(
        squared_euclidean_cost(xn, yn, normalize=True),
        torch.tensor([[2.0, 4.0]], dtype=F64),
        rtol=0,
        atol=1e-15,
    )


def test_squared_euclidean_cost_matches_cdist_and_is_nonnegative():
    rng = np.random.default_rng(31)
    x = torch.tensor(rng.normal(size=(3, 6, 5)) * 100)
    y = torch.tensor(rng.normal(size=(3, 4, 5)) * 100)
    # The expansion |x|^2 + |y|^2 - 2 x.y loses ~1e-16 relative of |x|^2 ~ 1e5: atol 1e-9.
    torch.testing.assert_close(
        squared_euclidean_cost(x, y), torch.cdist(x, y) ** 2, rtol=1e-12, atol=1e-9
    )
    same = squared_euclidean_cost(x, x)
    assert (same >= 0).all()  # clamped: round-off cannot make a distance negative
    torch.testing.assert_close(
        torch.diagonal(same, dim1=-2, dim2=-1), torch.zeros(3, 6, dtype=F64), rtol=0, atol=1e-9
    )
    xn, yn = (torch.nn.functional.normalize(t, dim=-1) for t in (x, y))
    torch.testing.assert_close(
        squared_euclidean_cost(x, y, normalize=True), torch.cdist(xn, yn) ** 2, rtol=0, atol=1e-14
    )


# ---------------------------------------------------------------------------------------- KCOT


def test_kcot_transform_hand_computed():
    c0 = torch.tensor([[0.2, 0.9]], dtype=F64)
    p = torch.tensor([[0.5, 0.0]], dtype=F64)
    cost, reg = kcot_cost(c0, p, 0.1, 0.05)
    assert reg == pytest.approx(0.15, abs=1e-15)
    torch.testing.assert_close(cost[0, 0], torch.tensor(0.2 - 0.05 * math.log(0.5), dtype=F64))
    assert cost[0, 1] == math.inf  # P = 0 forbids the pair
    lk = kcot_log_kernel(c0, p, 0.1, 0.05)
    torch.testing.assert_close(
        lk[0, 0], torch.tensor(-(0.2 - 0.05 * math.log(0.5)) / 0.15, dtype=F64)
    )
    assert lk[0, 1] == -math.inf
    with pytest.raises(ValueError, match=r"KCOT needs reg > 0 and beta >= 0, got reg=0.1, beta=-1"):
        kcot_cost(c0, p, 0.1, -1)
    with pytest.raises(ValueError, match=r"reg=0.0"):
        kcot_log_kernel(c0, p, 0.0, 0.05)


def _teacher(rng, shape):
    p = rng.uniform(0.01, 1.0, shape)
    return p / p.sum((-2, -1), keepdims=True)


@PROPERTY_SETTINGS
@given(
    case=cases(),
    beta=st.floats(0.01, 0.5),
    log_kappa=st.floats(-7.0, 7.0),
    n_iter=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_kcot_plan_is_invariant_to_teacher_scale(case, beta, log_kappa, n_iter, seed):
    p = torch.tensor(_teacher(np.random.default_rng(seed), case.cost.shape))
    cost, a, b = case.tensors()
    kappa = math.exp(log_kappa)  # kappa in [1e-3, 1e3]
    lk = kcot_log_kernel(cost, p, case.reg, beta)
    lk_scaled = kcot_log_kernel(cost, kappa * p, case.reg, beta)
    for kw in (dict(max_iter=n_iter), CONVERGED):
        plan = sinkhorn(None, a, b, log_kernel=lk, **kw).plan
        plan_scaled = sinkhorn(None, a, b, log_kernel=lk_scaled, **kw).plan
        # log(kappa P) shifts L by a constant that the first half-step absorbs exactly (in exact
        # arithmetic, at every iteration count); round-off of |L| <= ~30 potentials: 1e-12.
        torch.testing.assert_close(plan_scaled, plan, rtol=0, atol=1e-12)


def test_kcot_equals_pot_on_the_transformed_cost():
    """RAM: ot.sinkhorn(u_b, v_b, C0_b - beta log P_b, eps + beta) per image."""
    rng = np.random.default_rng(32)
    B, N, C, eps, beta = 3, 12, 5, 0.1, 0.05
    c0 = rng.uniform(0, 1, (B, N, C))
    p = _teacher(rng, (B, N, C))
    u = rng.dirichlet(np.ones(N), B)
    v = np.full(C, 1 / C)
    expected = np.stack(
        [
            ot.sinkhorn(
                u[i],
                v,
                c0[i] - beta * np.log(p[i]),
                eps + beta,
                stopThr=1e-12,
                numItermax=100_000,
                warn=False,
            )
            for i in range(B)
        ]
    )
    c0_t, p_t, u_t, v_t = (torch.tensor(x) for x in (c0, p, u, v))
    by_kernel = sinkhorn(
        None, u_t, v_t, log_kernel=kcot_log_kernel(c0_t, p_t, eps, beta), **CONVERGED
    ).plan
    by_cost = sinkhorn(*kcot_cost(c0_t, p_t, eps, beta)[:1], u_t, v_t, eps + beta, **CONVERGED).plan
    # Converged solves (marginal error <= 1e-12 for both): gap measured ~1e-13, bound 1e-9.
    np.testing.assert_allclose(by_kernel.numpy(), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(by_cost.numpy(), expected, rtol=0, atol=1e-9)


def test_kcot_plan_minimises_the_kcot_objective():
    """Moving mass along any 2x2 cycle (staying in Pi(u, v)) increases
    <T, C0> + eps sum T log T + beta KL(T || P)."""
    rng = np.random.default_rng(33)
    N, C, eps, beta = 4, 3, 0.1, 0.05
    c0 = torch.tensor(rng.uniform(0, 1, (N, C)))
    p = torch.tensor(_teacher(rng, (N, C)))
    u = torch.tensor(rng.dirichlet(np.ones(N)))
    plan = sinkhorn(
        None,
        u,
        None,
        log_kernel=kcot_log_kernel(c0, p, eps, beta),
        tol=1e-14,
        stop_metric="marginal_l2",
        max_iter=10_000,
    ).plan

    def objective(t):
        kl = (t * torch.log(t / p) - t + p).sum()
        return (t * c0).sum() + eps * (t * torch.log(t)).sum() + beta * kl

    base = objective(plan)
    for i, k in ((0, 1), (1, 3), (0, 2)):
        for j, m in ((0, 1), (1, 2), (0, 2)):
            cycle = torch.zeros_like(plan)
            cycle[i, j] = cycle[k, m] = 1.0
            cycle[i, m] = cycle[k, j] = -1.0
            step = 0.1 * plan[cycle != 0].min()  # keeps every entry positive
            for sign in (1.0, -1.0):
                # Strictly convex: the increase is about (eps + beta) step^2 / (2 T) >= 1e-6 here,
                # far above the ~1e-16 round-off of an objective of size 0.2 (margin 1e-12).
                assert objective(plan + sign * step * cycle) > base + 1e-12
