"""Tests of ``ramlico.ot.sinkhorn``: POT agreement, marginals, zero mass and padding, batching,
precision and autocast, invariances, the scaling-domain fallback, gradient modes, validation.

Oracles: POT 0.9.7 (docs/sinkhorn.md, "POT"). Every tolerance is justified where it is used.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import ot.batch
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from ot_testing import (
    F64,
    PROPERTY_SETTINGS,
    Case,
    cases,
    on_support,
    per_problem,
    pot_cols_first,
    pot_converged,
    pot_rows_first,
    pot_rows_first_one,
    pot_unbalanced,
)

from ramlico.ot import sinkhorn

# The package re-exports the function under the module's name, so fetch the module explicitly.
engine = importlib.import_module("ramlico.ot.sinkhorn")

METHODS = ("auto", "log")
ORDERS = ("rows_first", "cols_first")
NEG_INF = float("-inf")

# Converged solves stop on the marginal error (the most direct optimality measure).
CONVERGED = dict(tol=1e-11, stop_metric="marginal_l2", max_iter=20_000)
# Gap between two converged fp64 solves of one problem (justified in the POT comparison below).
CONVERGED_ATOL = 1e-9


def _full(x: np.ndarray, case: Case) -> np.ndarray:
    """Broadcast a marginal to ``(*batch, size)``."""
    return np.broadcast_to(x, case.batch + x.shape[-1:])


# --------------------------------------------------------------------------- hand-computed value


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", ORDERS)
def test_hand_computed_two_by_two(method, order):
    # a = b = [.5, .5], C = [[0, 1], [1, 0]], eps = 1. By symmetry T = [[x, .5 - x], [.5 - x, x]];
    # optimality makes T11 T22 / (T12 T21) = K11 K22 / (K12 K21) = e^2, so x / (.5 - x) = e and
    # x = 1 / (2 (1 + e^-1)) = 0.365529 (POT's doctest value).
    cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
    half = torch.tensor([0.5, 0.5], dtype=F64)
    res = sinkhorn(
        cost,
        half,
        half,
        1.0,
        tol=1e-14,
        stop_metric="marginal_l2",
        max_iter=100,
        method=method,
        order=order,
    )
    x = 1.0 / (2.0 * (1.0 + math.exp(-1.0)))
    assert round(x, 6) == 0.365529
    expected = torch.tensor([[x, 0.5 - x], [0.5 - x, x]], dtype=F64)
    # Converged to a marginal error of 1e-14 on a perfectly conditioned 2x2: agreement to 1e-12.
    torch.testing.assert_close(res.plan, expected, rtol=0, atol=1e-12)
    assert bool(res.converged)


# ------------------------------------------------------------------ agreement with POT (converged)


@PROPERTY_SETTINGS
@given(case=cases(), order=st.sampled_from(ORDERS))
def test_converged_plan_matches_pot_fp64(case, order):
    cost, a, b = case.tensors()
    expected = per_problem(case, lambda c, a_, b_: pot_converged(c, a_, b_, case.reg))
    for method in METHODS:
        res = sinkhorn(cost, a, b, case.reg, order=order, method=method, **CONVERGED)
        assert res.converged.all()
        plan = res.plan.numpy()
        assert (plan >= 0).all()
        # Both marginals: the stopping rule bounds the inexact one's l2 error by 1e-11, the other is
        # exact to round-off; 1e-10 covers both.
        np.testing.assert_allclose(plan.sum(-1), _full(case.a, case), rtol=0, atol=1e-10)
        np.testing.assert_allclose(plan.sum(-2), _full(case.b, case), rtol=0, atol=1e-10)
        # Two solvers that each meet the marginals to <= 1e-11; the gap is that error times the
        # problem's conditioning (worst at eps = 0.05): measured <= 8e-12 over 200 random draws.
        # CONVERGED_ATOL = 1e-9 is 100x that and 1000x inside the 1e-6.
        np.testing.assert_allclose(plan, expected, rtol=0, atol=CONVERGED_ATOL)
        # The returned value is the primal objective of the returned plan, <T, C> - reg H(T):
        # an identity for T = exp(L + f + g) (1e-12 is round-off on values of order 1).
        plogp = np.where(plan > 0, plan * np.log(np.where(plan > 0, plan, 1.0)), 0.0)
        primal = (plan * case.cost).sum((-2, -1)) + case.reg * plogp.sum((-2, -1))
        np.testing.assert_allclose(res.value.numpy(), primal, rtol=0, atol=1e-12)


@PROPERTY_SETTINGS
@given(case=cases(), order=st.sampled_from(ORDERS))
def test_converged_plan_matches_pot_fp32(case, order):
    cost, a, b = case.tensors(torch.float32)
    expected = per_problem(case, lambda c, a_, b_: pot_converged(c, a_, b_, case.reg))
    for method in METHODS:
        # 1e-6 is a marginal error fp32 reaches reliably (its floor is ~1e-7 * sqrt(N)).
        res = sinkhorn(
            cost,
            a,
            b,
            case.reg,
            order=order,
            method=method,
            tol=1e-6,
            stop_metric="marginal_l2",
            max_iter=5_000,
        )
        assert res.plan.dtype == torch.float32 and res.converged.all()
        # The 1e-4 relative, entrywise with a floor of 1e-4 of the largest entry: fp32
        # round-off on exponents |L| <= 20 plus the 1e-6 marginal error give at most 4e-6 of the
        # largest entry and 1.7e-4 relative on the tiniest entries (measured, 200 draws).
        np.testing.assert_allclose(
            res.plan.double().numpy(), expected, rtol=1e-4, atol=1e-4 * expected.max()
        )


@pytest.mark.parametrize("method", METHODS)
def test_converged_batch_matches_pot_solve_batch(method):
    rng = np.random.default_rng(3)
    cost = rng.uniform(0, 1, (6, 5, 7))
    a = rng.dirichlet(np.ones(5), 6)
    b = rng.dirichlet(np.ones(7), 6)
    ref = ot.batch.solve_batch(cost, 0.2, a, b, method="log_sinkhorn", tol=1e-13, max_iter=100_000)
    res = sinkhorn(*(torch.tensor(x) for x in (cost, a, b)), 0.2, method=method, **CONVERGED)
    # Converged on both sides (POT to 1e-13 row-marginal error, ours 1e-11): CONVERGED_ATOL.
    np.testing.assert_allclose(res.plan.numpy(), np.asarray(ref.plan), rtol=0, atol=CONVERGED_ATOL)
    # POT's batch value is <T, M> + reg sum T log T, the same objective as ours.
    np.testing.assert_allclose(res.value.numpy(), np.asarray(ref.value), rtol=0, atol=1e-9)


# --------------------------------------------------------- agreement with POT (fixed iterations)

# Fixed-iteration results are the same arithmetic as POT's up to rounding order (measured <= 2e-16).
# Sinkhorn half-steps are non-expansive, so round-off does not grow with the iteration count:
# 1e-13 on plan entries <= 1 leaves a margin of ~500 ulps (the scaling path reorders operations).
FIXED_ATOL = 1e-13


@PROPERTY_SETTINGS
@given(case=cases(), n_iter=st.integers(1, 12))
def test_fixed_iterations_cols_first_equal_pot_sinkhorn_log(case, n_iter):
    cost, a, b = case.tensors()
    expected = per_problem(case, lambda c, a_, b_: pot_cols_first(c, a_, b_, case.reg, n_iter))
    for method in METHODS:
        res = sinkhorn(cost, a, b, case.reg, order="cols_first", max_iter=n_iter, method=method)
        assert (res.n_iter == n_iter).all()
        np.testing.assert_allclose(res.plan.numpy(), expected, rtol=0, atol=FIXED_ATOL)


@PROPERTY_SETTINGS
@given(case=cases(), n_iter=st.integers(1, 12))
def test_fixed_iterations_rows_first_equal_pot_batch(case, n_iter):
    cost, a, b = case.tensors()
    expected = pot_rows_first(case, n_iter)
    for method in METHODS:
        res = sinkhorn(cost, a, b, case.reg, order="rows_first", max_iter=n_iter, method=method)
        np.testing.assert_allclose(res.plan.numpy(), expected, rtol=0, atol=FIXED_ATOL)


_rho = st.one_of(st.floats(0.1, 10.0), st.just(math.inf))


@PROPERTY_SETTINGS
@given(
    case=cases(),
    n_iter=st.integers(1, 12),
    reg_m=st.one_of(st.floats(0.1, 10.0), st.tuples(_rho, _rho)),
    order=st.sampled_from(ORDERS),
)
def test_fixed_iterations_unbalanced_equal_pot(case, n_iter, reg_m, order):
    cost, a, b = case.tensors()
    rho_a, rho_b = reg_m if isinstance(reg_m, tuple) else (reg_m, reg_m)
    if order == "rows_first":  # POT's order
        expected = per_problem(
            case, lambda c, a_, b_: pot_unbalanced(c, a_, b_, case.reg, (rho_a, rho_b), n_iter)
        )
    else:  # columns first on (C, a, b) = POT's rows first on the transposed problem
        expected = per_problem(
            case,
            lambda c, a_, b_: pot_unbalanced(c.T, b_, a_, case.reg, (rho_b, rho_a), n_iter).T,
        )
    for method in METHODS:
        res = sinkhorn(
            cost, a, b, case.reg, reg_m=reg_m, order=order, max_iter=n_iter, method=method
        )
        np.testing.assert_allclose(res.plan.numpy(), expected, rtol=0, atol=FIXED_ATOL)


@pytest.mark.parametrize("method", METHODS)
def test_unbalanced_limits(method):
    rng = np.random.default_rng(4)
    cost = torch.tensor(rng.uniform(0, 1, (2, 5, 4)))
    a = torch.tensor(rng.dirichlet(np.ones(5)))
    b = torch.tensor(rng.dirichlet(np.ones(4)))
    kw = dict(max_iter=7, method=method)
    # rho = inf on both sides is the balanced problem: same code path, identical bits.
    balanced = sinkhorn(cost, a, b, 0.3, **kw)
    assert torch.equal(sinkhorn(cost, a, b, 0.3, reg_m=math.inf, **kw).plan, balanced.plan)
    # Semi-relaxed: the hard side (rows) is the last half-step with cols_first, so it is exact
    # after any number of iterations (round-off only), while the soft side is not.
    semi = sinkhorn(cost, a, b, 0.3, reg_m=(math.inf, 0.5), order="cols_first", **kw).plan
    torch.testing.assert_close(semi.sum(-1), a.expand(2, 5), rtol=0, atol=1e-15)
    assert (semi.sum(-2) - b).abs().max() > 1e-3


# -------------------------------------------------------------------- zero mass, empty, padding


@PROPERTY_SETTINGS
@given(case=cases(zero_mass=True), order=st.sampled_from(ORDERS), n_iter=st.integers(1, 10))
def test_zero_mass_entries_are_zero_and_the_rest_is_the_subproblem(case, order, n_iter):
    cost, a, b = case.tensors()
    if order == "cols_first":
        fixed_ref = on_support(lambda c, a_, b_: pot_cols_first(c, a_, b_, case.reg, n_iter))
    else:
        fixed_ref = on_support(lambda c, a_, b_: pot_rows_first_one(c, a_, b_, case.reg, n_iter))
    expected_fixed = per_problem(case, fixed_ref)
    expected_conv = per_problem(
        case, on_support(lambda c, a_, b_: pot_converged(c, a_, b_, case.reg))
    )
    zero_rows, zero_cols = _full(case.a, case) == 0, _full(case.b, case) == 0
    for method in METHODS:
        for kw, expected, atol in (
            (dict(max_iter=n_iter), expected_fixed, FIXED_ATOL),
            # converged: as in test_converged_plan_matches_pot_fp64
            (CONVERGED, expected_conv, CONVERGED_ATOL),
        ):
            res = sinkhorn(cost, a, b, case.reg, order=order, method=method, **kw)
            plan = res.plan.numpy()
            assert (plan[zero_rows] == 0).all()  # exactly zero, not small
            assert (np.swapaxes(plan, -1, -2)[zero_cols] == 0).all()
            assert (res.f.numpy()[zero_rows] == NEG_INF).all()
            assert (res.g.numpy()[zero_cols] == NEG_INF).all()
            assert np.isfinite(res.value.numpy()).all()
            np.testing.assert_allclose(plan, expected, rtol=0, atol=atol)


def _empty_batch(kind: str):
    """A batch of 2 problems (3 x 4) whose second one has no mass on one or both sides."""
    rng = np.random.default_rng(5)
    cost = torch.tensor(rng.uniform(0, 1, (2, 3, 4)))
    a = torch.tensor(rng.dirichlet(np.ones(3), 2))
    b = torch.tensor(rng.dirichlet(np.ones(4), 2))
    row_mask = col_mask = None
    if kind in ("zero_a", "zero_a_and_b"):
        a[1] = 0.0
    if kind in ("zero_b", "zero_a_and_b"):
        b[1] = 0.0
    if kind == "row_mask":
        row_mask = torch.tensor([[True] * 3, [False] * 3])
    if kind == "col_mask":
        col_mask = torch.tensor([[True] * 4, [False] * 4])
    return cost, a, b, row_mask, col_mask


@pytest.mark.parametrize("kind", ["zero_a_and_b", "zero_a", "zero_b", "row_mask", "col_mask"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tol", [None, 1e-9])
def test_empty_problems_give_zero_plan(kind, method, tol):
    cost, a, b, row_mask, col_mask = _empty_batch(kind)
    kw = dict(method=method, tol=tol, max_iter=500, stop_metric="marginal_l2")
    res = sinkhorn(cost, a, b, 0.2, row_mask=row_mask, col_mask=col_mask, **kw)
    for t in (res.plan, res.value, res.err):
        assert not torch.isnan(t).any()
    assert (res.plan[1] == 0).all() and res.value[1] == 0 and res.err[1] == 0
    assert (res.f[1] == NEG_INF).all() and (res.g[1] == NEG_INF).all()
    assert bool(res.converged[1]) and int(res.n_iter[1]) == 0
    # The empty batch-mate changes nothing for the other problem (per_problem rule: bitwise).
    alone = sinkhorn(cost[0], a[0], b[0], 0.2, **kw)
    assert torch.equal(res.plan[0], alone.plan) and res.n_iter[0] == alone.n_iter
    # A single problem that is entirely empty: trivially converged, no warning, zero everything.
    res = sinkhorn(
        cost[1],
        a[1],
        b[1],
        0.2,
        row_mask=None if row_mask is None else row_mask[1],
        col_mask=None if col_mask is None else col_mask[1],
        output="contract",
        contract_with=torch.ones(3, 4, dtype=F64),
        **kw,
    )
    assert res.contraction == 0 and bool(res.converged) and int(res.n_iter) == 0


@PROPERTY_SETTINGS
@given(
    sizes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=4),
    extra=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    reg=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**32 - 1),
    col_padding=st.sampled_from(["col_mask", "zero_b"]),
    method=st.sampled_from(METHODS),
    order=st.sampled_from(ORDERS),
    metric=st.sampled_from(["scaling_l1_mean", "potential_l1_sum", "marginal_l2", "plan_max_abs"]),
)
def test_padded_batch_equals_problems_solved_alone(
    sizes, extra, reg, seed, col_padding, method, order, metric
):
    """Ragged problems padded into one batch (row_mask, col_mask or b = 0) = each solved alone."""
    rng = np.random.default_rng(seed)
    n_pad = max(n for n, _ in sizes) + extra[0]
    m_pad = max(m for _, m in sizes) + extra[1]
    k = len(sizes)
    # Padding entries hold garbage (large costs, positive a) that the masks must hide.
    cost = torch.tensor(rng.uniform(0, 1, (k, n_pad, m_pad))) + 100.0
    a = torch.tensor(rng.uniform(0.1, 1, (k, n_pad)))
    b = torch.zeros(k, m_pad, dtype=F64)
    row_mask = torch.zeros(k, n_pad, dtype=torch.bool)
    col_mask = torch.zeros(k, m_pad, dtype=torch.bool)
    for i, (n, m) in enumerate(sizes):
        cost[i, :n, :m] -= 100.0
        a[i, :n] /= a[i, :n].sum()
        b[i, :m] = torch.tensor(rng.dirichlet(np.ones(m)))
        row_mask[i, :n] = True
        col_mask[i, :m] = True
    kw = dict(order=order, method=method, tol=1e-8, stop_metric=metric, max_iter=300, warn=False)
    cmask = col_mask if col_padding == "col_mask" else None
    res = sinkhorn(cost, a, b, reg, row_mask=row_mask, col_mask=cmask, **kw)
    for i, (n, m) in enumerate(sizes):
        alone = sinkhorn(cost[i, :n, :m], a[i, :n], b[i, :m], reg, **kw)
        assert int(res.n_iter[i]) == int(alone.n_iter)
        assert bool(res.converged[i]) == bool(alone.converged)
        # The metric itself ignores padding (scaling_l1_mean divides by the real rows only): the
        # last errors agree up to round-off, which for scaling_l1_mean is absolute in the largest
        # scaling e^f (up to ~2e4 at reg = 0.05; measured 7e-12 there): ~50 ulps of it. A wrong
        # divisor would change the error by a factor >= 8/7.
        noise = 1e-14 * max(1.0, float(alone.f.exp().max()))
        torch.testing.assert_close(res.err[i], alone.err, rtol=1e-5, atol=noise)
        # Same arithmetic except reductions over -inf padding (exact zeros): 1e-12 (the issue's).
        torch.testing.assert_close(res.plan[i, :n, :m], alone.plan, rtol=0, atol=1e-12)
        assert (res.plan[i, n:] == 0).all() and (res.plan[i, :, m:] == 0).all()


@PROPERTY_SETTINGS
@given(
    case=cases(),
    method=st.sampled_from(METHODS),
    order=st.sampled_from(ORDERS),
    per_problem_reg=st.booleans(),
)
def test_batch_equals_one_by_one_bitwise(case, method, order, per_problem_reg):
    cost, a, b = case.tensors()
    reg = case.reg
    if per_problem_reg:  # a reg per problem, broadcast over the leading dims
        reg = torch.linspace(case.reg, 1.0, max(1, int(np.prod(case.batch))), dtype=F64)
        reg = reg.reshape(case.batch)
    # warn=False: near-degenerate draws may need more than max_iter; convergence is not the point.
    kw = dict(
        order=order,
        method=method,
        tol=1e-9,
        stop_metric="potential_l1_sum",
        max_iter=2_000,
        warn=False,
    )
    res = sinkhorn(cost, a, b, reg, **kw)
    a_full = a.expand(*case.batch, a.shape[-1])
    b_full = b.expand(*case.batch, b.shape[-1])
    for idx, *_ in case.problems():
        reg_i = reg[idx].item() if isinstance(reg, torch.Tensor) else reg
        alone = sinkhorn(cost[idx], a_full[idx], b_full[idx], reg_i, **kw)
        # per_problem rule: a problem's iterates never depend on its batch-mates (bitwise).
        assert torch.equal(res.plan[idx], alone.plan)
        assert res.n_iter[idx] == alone.n_iter


def test_broadcast_marginals_equal_materialised():
    """LaZSL layout: a (B, 1, N) and b (1, K, M) equal the materialised (B, K, .) marginals."""
    rng = np.random.default_rng(6)
    cost = torch.tensor(rng.uniform(0.6, 1.0, (2, 3, 5, 4)))
    a = torch.tensor(rng.dirichlet(np.ones(5), (2, 1)))
    b = torch.tensor(rng.dirichlet(np.ones(4), (1, 3)))
    for method in METHODS:
        kw = dict(tol=1e-6, max_iter=500, method=method)
        res = sinkhorn(cost, a, b, 0.1, **kw)
        full = sinkhorn(cost, a.expand(2, 3, 5).clone(), b.expand(2, 3, 4).clone(), 0.1, **kw)
        assert torch.equal(res.plan, full.plan) and torch.equal(res.n_iter, full.n_iter)


# ------------------------------------------------------------------------- precision and autocast


@PROPERTY_SETTINGS
@given(
    case=cases(),
    log_reg=st.floats(-3.0, 1.0),
    cost_scale=st.floats(0.0, 1e3),
    dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float64]),
    order=st.sampled_from(ORDERS),
    tol=st.sampled_from([None, 1e-6]),
)
def test_no_nan_or_inf_for_small_reg_and_large_costs(case, log_reg, cost_scale, dtype, order, tol):
    reg = 10.0**log_reg  # reg in [1e-3, 10]
    cost = torch.tensor(case.cost * cost_scale).to(dtype)  # costs in [0, 1e3]
    work = torch.float64 if dtype == torch.float64 else torch.float32
    a, b = (torch.tensor(x, dtype=work) for x in (case.a, case.b))
    exact, target = (-1, a) if order == "cols_first" else (-2, b)
    for method in METHODS:
        res = sinkhorn(
            cost, a, b, reg, order=order, method=method, tol=tol, max_iter=50, warn=False
        )
        assert res.plan.dtype == work  # bf16 is upcast to fp32
        for t in (res.plan, res.f, res.g, res.value, res.n_iter):
            assert torch.isfinite(t).all()
        assert (res.plan >= 0).all()
        # The side fixed by the last half-step is exact up to the rounding of exponents of size
        # max|L| = max C / reg (up to 1e6): a few ulps of that, i.e. 8 u max|L| relative, + 1e-5.
        max_l = float(cost.to(work).max()) / reg
        rtol = 8 * torch.finfo(work).eps * max_l + 1e-5
        torch.testing.assert_close(
            res.plan.sum(exact), target.expand_as(res.plan.sum(exact)), rtol=rtol, atol=0
        )


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", METHODS)
def test_low_precision_inputs_under_autocast_give_the_fp32_answer(low, method):
    rng = np.random.default_rng(7)
    cost = torch.tensor(rng.uniform(0, 2, (3, 5, 4))).to(low)
    b = torch.tensor([0.5, 0.25, 0.125, 0.125]).to(low)  # exactly representable: masses match
    kw = dict(tol=1e-6, stop_metric="marginal_l2", max_iter=500, method=method)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = sinkhorn(cost, None, b, 0.1, **kw)
    ref = sinkhorn(cost.float(), None, b.float(), 0.1, **kw)
    assert res.plan.dtype == res.f.dtype == res.value.dtype == torch.float32
    # The solver casts to fp32 and disables autocast: identical bits to the fp32 call.
    for name in ("plan", "f", "g", "value", "n_iter", "err"):
        assert torch.equal(getattr(res, name), getattr(ref, name)), name


@pytest.mark.parametrize("method", METHODS)
def test_fp64_is_preserved_under_autocast(method):
    rng = np.random.default_rng(8)
    cost = torch.tensor(rng.uniform(0, 1, (2, 4, 3)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = sinkhorn(cost, None, None, 0.1, max_iter=20, method=method)
    ref = sinkhorn(cost, None, None, 0.1, max_iter=20, method=method)
    assert res.plan.dtype == torch.float64 and torch.equal(res.plan, ref.plan)


# ----------------------------------------------------------------------------------- invariances


@PROPERTY_SETTINGS
@given(case=cases(), n_iter=st.integers(1, 15), order=st.sampled_from(ORDERS), data=st.data())
def test_permutation_equivariance(case, n_iter, order, data):
    n, m = case.cost.shape[-2:]
    pr = np.array(data.draw(st.permutations(range(n))))
    pc = np.array(data.draw(st.permutations(range(m))))
    cost, a, b = case.tensors()
    permuted = Case(case.cost[..., pr, :][..., pc], case.a[..., pr], case.b[..., pc], case.reg)
    cost_p, a_p, b_p = permuted.tensors()
    for method in METHODS:
        kw = dict(order=order, method=method, max_iter=n_iter)
        plan = sinkhorn(cost, a, b, case.reg, **kw).plan
        plan_p = sinkhorn(cost_p, a_p, b_p, case.reg, **kw).plan
        # Equivariant at every iterate; only the summation order of the reductions changes.
        torch.testing.assert_close(plan_p, plan[..., pr, :][..., pc], rtol=0, atol=FIXED_ATOL)


@PROPERTY_SETTINGS
@given(case=cases(), seed=st.integers(0, 2**32 - 1), order=st.sampled_from(ORDERS))
def test_row_and_column_cost_shifts_leave_the_converged_plan_unchanged(case, seed, order):
    rng = np.random.default_rng(seed)
    n, m = case.cost.shape[-2:]
    shifted = case.cost + rng.uniform(-2, 2, (n, 1)) + rng.uniform(-2, 2, (1, m))
    cost, a, b = case.tensors()
    for method in METHODS:
        kw = dict(order=order, method=method, **CONVERGED)
        plan = sinkhorn(cost, a, b, case.reg, **kw).plan
        plan_s = sinkhorn(torch.tensor(shifted), a, b, case.reg, **kw).plan
        # Two converged solves of problems with the same solution: as for the POT comparison
        # (measured <= 2e-11).
        torch.testing.assert_close(plan_s, plan, rtol=0, atol=CONVERGED_ATOL)


@PROPERTY_SETTINGS
@given(case=cases(), order=st.sampled_from(ORDERS))
def test_very_large_reg_gives_the_independent_coupling(case, order):
    reg = 1e4
    cost, a, b = case.tensors()
    outer = _full(case.a, case)[..., :, None] * _full(case.b, case)[..., None, :]
    for method in METHODS:
        plan = sinkhorn(cost, a, b, reg, order=order, method=method, **CONVERGED).plan.numpy()
        # T_ij = a_i b_j exp(-(C_ij - row term - column term) / reg): the doubly-centred cost is
        # at most 2 * range(C) <= 2 in size, so |T / (a b^T) - 1| <= ~2 / reg; bound 3 / reg.
        np.testing.assert_allclose(plan, outer, rtol=3.0 / reg, atol=0)


# -------------------------------------------------------------------- outputs and the log kernel


@pytest.mark.parametrize("method", METHODS)
def test_output_modes(method):
    rng = np.random.default_rng(9)
    cost = torch.tensor(rng.uniform(0, 1, (2, 5, 3)))
    a = torch.tensor([[0.2, 0.0, 0.3, 0.25, 0.25], [0.1, 0.2, 0.3, 0.2, 0.2]], dtype=F64)
    sim = torch.tensor(rng.normal(size=(2, 5, 3)))
    kw = dict(method=method, order="cols_first", max_iter=30)
    res = sinkhorn(cost, a, None, 0.2, **kw)
    pot = sinkhorn(cost, a, None, 0.2, output="potentials", **kw)
    assert pot.plan is None and torch.equal(pot.f, res.f) and torch.equal(pot.g, res.g)
    con = sinkhorn(cost, a, None, 0.2, output="contract", contract_with=sim, **kw)
    assert con.plan is None
    torch.testing.assert_close(con.contraction, (res.plan * sim).sum((-2, -1)), rtol=0, atol=1e-15)
    # Row-stochastic (OTFusion's Q = N T for uniform a): T_ij / a_i, zero rows stay zero; the rows
    # are the exact side with cols_first, so they sum to 1 up to round-off.
    rs = sinkhorn(cost, a, None, 0.2, output_scale="row_stochastic", **kw).plan
    torch.testing.assert_close(rs[0, [0, 2, 3, 4]].sum(-1), torch.ones(4, dtype=F64))
    torch.testing.assert_close(rs[1].sum(-1), torch.ones(5, dtype=F64))
    assert (rs[0, 1] == 0).all()
    torch.testing.assert_close(rs * a.unsqueeze(-1), res.plan, rtol=1e-15, atol=0)
    # The log-kernel input is the cost input with L = -C / reg.
    lk = sinkhorn(None, a, None, 0.2, log_kernel=-cost / 0.2, **kw)
    torch.testing.assert_close(lk.plan, res.plan, rtol=0, atol=1e-15)


def test_initial_potentials_are_used_and_zero_mass_stays_zero():
    """init = (f0, g0) changes finite-iteration iterates; zero-mass entries ignore it."""
    rng = np.random.default_rng(10)
    cost = torch.tensor(rng.uniform(0, 1, (4, 3)))
    a = torch.tensor([0.5, 0.0, 0.25, 0.25], dtype=F64)
    f0 = torch.tensor(rng.normal(size=4))
    g0 = torch.tensor(rng.normal(size=3))
    res = sinkhorn(cost, a, None, 0.1, order="rows_first", init=(f0, g0), max_iter=3)
    # Rows first: the first row step only reads g0; a literal 3-iteration log-domain loop.
    la, lb, lk = torch.log(a), torch.full((3,), -math.log(3), dtype=F64), -cost / 0.1
    g = g0
    for _ in range(3):
        f = la - torch.logsumexp(lk + g, -1)
        g = lb - torch.logsumexp(lk + f[:, None], 0)
    expected = torch.exp(lk + f[:, None] + g)
    torch.testing.assert_close(res.plan, expected, rtol=0, atol=FIXED_ATOL)
    assert (res.plan[1] == 0).all()
    plain = sinkhorn(cost, a, None, 0.1, order="rows_first", max_iter=3)
    assert (plain.plan - res.plan).abs().max() > 1e-6  # g0 mattered


# --------------------------------------------------------------------- scaling-domain fallback


def _hard_problem() -> torch.Tensor:
    """reg = 1e-3 with rows and columns 0.5 cost units apart: kernel ratios of e^-500 underflow
    the scaling domain (u, v beyond finfo.max ** 0.25) in either order, so it must fall back."""
    rng = np.random.default_rng(11)
    steps = 0.5 * torch.arange(6, dtype=F64)[:, None] + 0.5 * torch.arange(5, dtype=F64)
    return torch.tensor(rng.uniform(0, 0.1, (6, 5))) + steps


@pytest.fixture
def fallback_spy(monkeypatch):
    calls = []
    original = engine._merge_fallback

    def spy(scaling, bad, fast, slow):
        calls.append(bad.clone())
        return original(scaling, bad, fast, slow)

    monkeypatch.setattr(engine, "_merge_fallback", spy)
    return calls


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    "kw",
    [dict(max_iter=60), dict(tol=1e-9, stop_metric="marginal_l2", max_iter=5_000)],
    ids=["fixed", "tol"],
)
def test_scaling_fallback_equals_log_domain(fallback_spy, order, kw):
    easy = torch.tensor(np.random.default_rng(12).uniform(0, 1, (6, 5)))
    cost = torch.stack([easy, _hard_problem()])
    reg = torch.tensor([0.5, 1e-3], dtype=F64)
    auto = sinkhorn(cost, None, None, reg, order=order, method="auto", **kw)
    assert fallback_spy, "the hard problem must exercise the log-domain fallback"
    assert any(bool(bad[1]) and not bool(bad[0]) for bad in fallback_spy)
    log = sinkhorn(cost, None, None, reg, order=order, method="log", **kw)
    # The fallback re-runs the stretch in the log domain, so the result is the log-domain one up
    # to round-off: 1e-10 (the bound; measured ~3e-14).
    torch.testing.assert_close(auto.plan, log.plan, rtol=0, atol=1e-10)
    assert torch.equal(auto.n_iter, log.n_iter)
    # The well-conditioned batch-mate keeps its scaling-domain bits.
    alone = sinkhorn(easy, None, None, 0.5, order=order, method="auto", **kw)
    assert torch.equal(auto.plan[0], alone.plan) and auto.n_iter[0] == alone.n_iter


def test_scaling_fallback_fp32_log_kernel_beyond_exp_range(fallback_spy):
    """OTFusion's |L| up to 185 overflows fp32 exp; auto must still give the log-domain answer."""
    rng = np.random.default_rng(13)
    scores = torch.tensor(rng.uniform(0, 1.85, (1, 40, 6)), dtype=torch.float32)
    kw = dict(log_kernel=scores / 0.01, order="cols_first", max_iter=20)
    auto = sinkhorn(None, None, None, **kw, method="auto")
    assert fallback_spy
    log = sinkhorn(None, None, None, **kw, method="log")
    # fp32 with exponents up to 185: a few ulps of 185 (~1e-5) relative on every entry.
    torch.testing.assert_close(auto.plan, log.plan, rtol=1e-4, atol=1e-9)


# ------------------------------------------------------------------------------- gradient modes


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("source", ["cost", "log_kernel"])
def test_unrolled_gradients_pass_gradcheck(order, source):
    rng = np.random.default_rng(14)
    x = torch.tensor(rng.uniform(0, 1, (4, 3)), requires_grad=True)
    a = torch.tensor(rng.dirichlet(np.ones(4)))
    b = torch.tensor(rng.dirichlet(np.ones(3)))

    def plan(x):
        if source == "cost":
            res = sinkhorn(x, a, b, 0.3, grad="unrolled", max_iter=30, order=order)
        else:
            res = sinkhorn(None, a, b, log_kernel=x, grad="unrolled", max_iter=30, order=order)
        return res.plan

    assert torch.autograd.gradcheck(plan, (x,))


def test_grad_none_outputs_are_detached_and_unrolled_are_not():
    cost = torch.rand(2, 4, 3, dtype=F64, requires_grad=True)
    res = sinkhorn(cost, None, None, 0.2, max_iter=10)
    for t in (res.plan, res.f, res.g, res.value):
        assert not t.requires_grad
    res = sinkhorn(cost, None, None, 0.2, max_iter=10, grad="unrolled")
    assert res.plan.requires_grad and res.value.requires_grad
    (grad,) = torch.autograd.grad(res.plan[..., 0, 0].sum(), cost)
    assert grad.abs().sum() > 0


# ---------------------------------------------------------------------------------- validation


def _valid():
    return torch.rand(2, 3, 4, dtype=F64), torch.full((3,), 1 / 3, dtype=F64), None


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(a=torch.tensor([0.5, 0.6, -0.1], dtype=F64)), r"a has negative entries"),
        (dict(b=torch.tensor([0.5, 0.6, 0.1, -0.2], dtype=F64)), r"b has negative entries"),
        (dict(a=torch.tensor([0.5, 0.3, 0.3], dtype=F64)), r"sum\(a\) == sum\(b\).*reg_m"),
        (dict(a=torch.tensor([0.5, float("nan"), 0.5], dtype=F64)), r"a contains NaN or Inf"),
        (
            dict(cost=torch.tensor([[[0.0, float("inf")]]], dtype=F64), a=None),
            r"cost has 1 non-finite",
        ),
        (
            dict(cost=torch.full((1, 2, 2), float("nan"), dtype=F64), a=None),
            r"cost has 4 non-finite",
        ),
        (dict(reg=0.0), r"reg must be finite and > 0, got \[0.0\]"),
        (dict(reg=-0.1), r"reg must be finite and > 0"),
        (dict(reg=float("nan")), r"reg must be finite and > 0"),
        (dict(reg=torch.tensor([0.1, 0.0], dtype=F64)), r"reg must be finite and > 0"),
        (dict(reg=None), r"reg .* is required with cost"),
        (dict(order="columns_first"), r"order='columns_first' is not supported; choose one of"),
        (dict(method="scaling"), r"method='scaling' is not supported"),
        (dict(grad="envelope"), r"grad='envelope' is not supported"),
        (dict(stop_metric="l1"), r"stop_metric='l1' is not supported"),
        (dict(stop_rule="any"), r"stop_rule='any' is not supported"),
        (dict(output="value"), r"output='value' is not supported"),
        (dict(output_scale="col_stochastic"), r"output_scale='col_stochastic' is not supported"),
        (dict(output="contract"), r"needs contract_with"),
        (dict(tol=0.0), r"tol must be > 0 or None"),
        (dict(max_iter=-1), r"max_iter must be an int >= 0"),
        (dict(check_every=0), r"check_every must be a positive int"),
        (dict(reg_m=-1.0), r"reg_m \(rows\) must be > 0"),
        (dict(reg_m=(1.0, 2.0, 3.0)), r"reg_m must be a float or a pair"),
        (dict(a=torch.full((5,), 0.2, dtype=F64)), r"a has shape \(5,\); its last dim must match"),
        (
            dict(cost=torch.rand(3, 3, 4, dtype=F64), a=torch.full((2, 3), 1 / 3, dtype=F64)),
            r"shapes do not broadcast",
        ),
        (dict(log_a=torch.zeros(3, dtype=F64)), r"pass either a or log_a"),
    ],
)
def test_invalid_inputs_raise_value_error(change, match):
    cost, a, b = _valid()
    kw = dict(cost=cost, a=a, b=b, reg=0.1)
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        sinkhorn(kw.pop("cost"), kw.pop("a"), kw.pop("b"), kw.pop("reg"), **kw)


def test_mass_mismatch_within_tolerance_is_accepted():
    cost = torch.rand(3, 4, dtype=F64)
    a = torch.tensor([0.5, 0.25, 0.25 + 5e-5], dtype=F64)  # relative gap 5e-5 < mass_tol = 1e-4
    res = sinkhorn(cost, a, None, 0.1, max_iter=5)
    assert torch.isfinite(res.plan).all()
    with pytest.raises(ValueError, match=r"relative gap 5e-05 > mass_tol=1e-05"):
        sinkhorn(cost, a, None, 0.1, max_iter=5, mass_tol=1e-5)


def _low_precision_softmax(dtype, shape, seed):
    """A softmax rounded to ``dtype`` (e.g. a model's weights under autocast): its mass is off 1
    by the dtype's round-off, far more than the fp32 ``mass_tol`` of 1e-4."""
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return torch.softmax(logits, -1).to(dtype)


@pytest.mark.parametrize("low, strict_rejects", [(torch.bfloat16, True), (torch.float16, False)])
def test_low_precision_marginals_of_50_entries_are_accepted_and_equalised(low, strict_rejects):
    a = _low_precision_softmax(low, (4, 50), seed=0)
    b = torch.full((7,), 1 / 7)
    cost = torch.rand(4, 50, 7, generator=torch.Generator().manual_seed(1))
    # bf16 (eps 2^-7) moves this mass by 7e-4, beyond the fp32 check's 1e-4, so the strict check
    # rejects these very values; fp16 (eps 2^-10) stays inside it here (7.6e-5).
    gap = (a.float().sum(-1) - 1).abs().max().item()
    assert (gap > 1e-4) == strict_rejects
    if strict_rejects:
        with pytest.raises(ValueError, match=r"relative gap .* > mass_tol=0.0001\)"):
            sinkhorn(cost, a.float(), b, 0.1)
    kw = dict(tol=1e-7, stop_metric="marginal_l2", max_iter=5000)
    res = sinkhorn(cost, a, b, 0.1, **kw)
    # a is rescaled in fp32 to b's mass: the same answer as renormalising by hand.
    by_hand = a.float() / a.float().sum(-1, keepdim=True) * b.sum()
    ref = sinkhorn(cost, by_hand, b, 0.1, **kw)
    torch.testing.assert_close(res.plan, ref.plan, rtol=1e-5, atol=1e-9)  # fp32 rescale order
    torch.testing.assert_close(res.plan.sum(-1), by_hand, rtol=0, atol=1e-6)  # tol 1e-7 in l2
    assert bool(res.converged.all())


def test_two_low_precision_marginals_meet_at_their_mean_mass():
    a = _low_precision_softmax(torch.bfloat16, (3, 50), seed=2)
    b = _low_precision_softmax(torch.bfloat16, (3, 20), seed=3)
    cost = torch.rand(3, 50, 20, generator=torch.Generator().manual_seed(4))
    res = sinkhorn(cost, a, b, 0.1, tol=1e-7, stop_metric="marginal_l2", max_iter=5000)
    mass = (a.float().sum(-1) + b.float().sum(-1)) / 2
    torch.testing.assert_close(res.plan.sum((-2, -1)), mass, rtol=1e-6, atol=0)
    torch.testing.assert_close(  # the columns are exact (rows first): b rescaled to the mean
        res.plan.sum(-2), b.float() * (mass / b.float().sum(-1))[:, None], rtol=1e-5, atol=1e-8
    )


def test_low_precision_tolerance_is_the_dtype_round_off_not_more():
    cost = torch.rand(2, 50, 5, generator=torch.Generator().manual_seed(5))
    a = (_low_precision_softmax(torch.float32, (2, 50), seed=6) * 1.02).to(torch.bfloat16)
    # A 2% gap is a real mismatch, not bf16 round-off (eps = 0.0078): still an error, naming why.
    with pytest.raises(ValueError, match=r"> mass_tol=0.0001 \+ 0.00781 for the round-off of a "):
        sinkhorn(cost, a, None, 0.1)
    a16 = (_low_precision_softmax(torch.float32, (2, 50), seed=6) * 1.002).to(torch.float16)
    with pytest.raises(ValueError, match=r"\+ 0.000977 for the round-off of a \(float16\)"):
        sinkhorn(cost, a16, None, 0.1)  # fp16 is 8x finer: 0.2% is too much there


def test_fp32_marginals_keep_the_strict_check():
    cost = torch.rand(3, 4)
    a = torch.tensor([0.5, 0.25, 0.25 + 5e-4])  # a gap bf16 would forgive, fp32 does not
    with pytest.raises(ValueError, match=r"relative gap 0.0005 > mass_tol=0.0001\)"):
        sinkhorn(cost, a, None, 0.1, max_iter=5)


def test_low_precision_log_marginals_and_unchecked_calls_are_equalised():
    a = _low_precision_softmax(torch.float32, (2, 50), seed=7)
    cost = torch.rand(2, 50, 6, generator=torch.Generator().manual_seed(8))
    kw = dict(tol=1e-7, stop_metric="marginal_l2", max_iter=5000)
    ref = sinkhorn(cost, a, None, 0.1, **kw)
    log_a = a.log().to(torch.bfloat16)  # entries off by up to eps/2 * |log a_i| ~ 2% here
    res = sinkhorn(cost, None, None, 0.1, log_a=log_a, **kw)
    by_hand = log_a.float().exp() / log_a.float().exp().sum(-1, keepdim=True)
    torch.testing.assert_close(res.plan.sum(-1), by_hand, rtol=0, atol=1e-6)
    assert (res.plan - ref.plan).abs().max() > 1e-5  # the bf16 rounding did change the problem
    # validate=False skips the check but still equalises the masses (no host sync needed).
    unchecked = sinkhorn(cost, None, None, 0.1, log_a=log_a, validate=False, **kw)
    assert torch.equal(unchecked.plan, res.plan)


@pytest.mark.parametrize(
    "log_kernel, match",
    [
        (torch.tensor([[0.0, float("nan")]], dtype=F64), r"log_kernel contains NaN or \+inf"),
        (torch.tensor([[0.0, float("inf")]], dtype=F64), r"log_kernel contains NaN or \+inf"),
    ],
)
def test_invalid_log_kernel_raises(log_kernel, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn(None, log_kernel=log_kernel)
    with pytest.raises(ValueError, match=r"exactly one of cost .* or log_kernel"):
        sinkhorn(torch.zeros(1, 2, dtype=F64), log_kernel=torch.zeros(1, 2, dtype=F64))


def test_forbidden_pairs_and_unreachable_rows():
    """-inf log-kernel entries get zero mass; a positive row with no finite entry is an error."""
    lk = -torch.rand(3, 3, dtype=F64)
    lk[0, 1] = float("-inf")  # a feasible plan with T_01 = 0 and all other entries > 0 exists
    res = sinkhorn(None, log_kernel=lk, tol=1e-12, stop_metric="marginal_l2", max_iter=1000)
    assert res.plan[0, 1] == 0
    third = torch.full((3,), 1 / 3, dtype=F64)
    # Converged to a marginal error of 1e-12: both marginals to 1e-11.
    torch.testing.assert_close(res.plan.sum(-1), third, rtol=0, atol=1e-11)
    torch.testing.assert_close(res.plan.sum(-2), third, rtol=0, atol=1e-11)
    with pytest.raises(FloatingPointError, match="non-finite plan"):
        sinkhorn(None, log_kernel=torch.tensor([[float("-inf")] * 2, [0.0, 0.0]], dtype=F64))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", ORDERS)
def test_zero_mass_lines_of_forbidden_pairs_stay_finite(method, order):
    """Padding whose log-kernel line is all -inf (nothing reachable) must not produce NaN:
    log a - LSE = -inf - (-inf) is guarded."""
    rng = np.random.default_rng(15)
    lk = torch.tensor(rng.uniform(-1, 0, (4, 5)))
    lk[3, :] = float("-inf")  # padded row
    lk[:, 4] = float("-inf")  # padded column
    row_mask = torch.tensor([True, True, True, False])
    b = torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0], dtype=F64)
    res = sinkhorn(
        None, None, b, log_kernel=lk, row_mask=row_mask, order=order, method=method, max_iter=20
    )
    assert torch.isfinite(res.plan).all() and (res.plan[3] == 0).all()
    assert (res.plan[:, 4] == 0).all()
    alone = sinkhorn(
        None, None, b[:4], log_kernel=lk[:3, :4], order=order, method=method, max_iter=20
    )
    torch.testing.assert_close(res.plan[:3, :4], alone.plan, rtol=0, atol=1e-15)


def test_large_problems_take_the_blas_path_and_match_the_log_domain():
    # N * M >= 16384 switches the scaling path to BLAS mat-vecs (ramlico.ot.iterations); it must
    # give the log-domain iterates up to round-off, and problems solved alone must match.
    gen = torch.Generator().manual_seed(3)
    cost = torch.rand(3, 200, 100, generator=gen, dtype=torch.float64)
    a = torch.softmax(torch.randn(3, 200, generator=gen, dtype=torch.float64), -1)
    b = torch.full((3, 100), 0.01, dtype=torch.float64)
    fast = sinkhorn(cost, a, b, 0.05, max_iter=60)
    slow = sinkhorn(cost, a, b, 0.05, max_iter=60, method="log")
    torch.testing.assert_close(fast.plan, slow.plan, rtol=0, atol=1e-12)  # round-off, fp64
    alone = sinkhorn(cost[1], a[1], b[1], 0.05, max_iter=60)
    torch.testing.assert_close(alone.plan, fast.plan[1], rtol=0, atol=1e-15)
