"""Tests of the stopping logic (``ramlico.ot.stopping`` and the driver in ``ramlico.ot.sinkhorn``).

Each reference method's loop is ported literally to float64 torch below (RAM, LaZSL, LICO,
OTFusion; docs/sinkhorn.md) and the engine's parity settings must reproduce it: the same
iteration count and the same plan. A generic literal loop covers every metric x rule x order.
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from ot_testing import F64, PROPERTY_SETTINGS, cases

from ramlico.ot import SinkhornWarning, sinkhorn

engine = importlib.import_module("ramlico.ot.sinkhorn")

METRICS = ("scaling_l1_mean", "potential_l1_sum", "marginal_l2", "plan_max_abs")
RULES = ("per_problem", "all", "batch_mean")
ORDERS = ("rows_first", "cols_first")
# Parity plans: the ports run the same iterations in another form (scaling domain, cost units),
# so they differ by round-off only (~1e-15 measured); 1e-10 is the bound.
PARITY_ATOL = 1e-10


# ------------------------------------------------------------------ literal reference loops


def ram_reference(a, b, M, reg, max_iter=100, thresh=1e-3):
    """EricTan7/RAM model/ot_solver.py ``Sinkhorn``, line for line (float64 inputs)."""
    K = torch.exp(-M / reg)
    r = torch.ones_like(a)
    c = torch.ones_like(b)
    for i in range(max_iter):  # noqa: B007 (literal port: i is read after the loop)
        r0 = r
        r = a / torch.matmul(K, c.unsqueeze(-1)).squeeze(-1)
        c = b / torch.matmul(K.permute(0, 2, 1).contiguous(), r.unsqueeze(-1)).squeeze(-1)
        err = (r - r0).abs().mean(dim=1)
        if torch.all(err < thresh):
            break
    T = torch.matmul(r.unsqueeze(-1), c.unsqueeze(-2)) * K
    return T, i + 1


def lazsl_reference(K, u, v, max_iter=100):
    """shiming-chen/LaZSL OP.py ``OP_d.Sinkhorn``, called on one (image, class) problem."""
    r = torch.ones_like(u)
    c = torch.ones_like(v)
    thresh = 1e-2
    for i in range(max_iter):  # noqa: B007 (literal port: i is read after the loop)
        r0 = r
        r = u / torch.matmul(K, c.unsqueeze(-1)).squeeze(-1)
        c = v / torch.matmul(K.permute(0, 2, 1).contiguous(), r.unsqueeze(-1)).squeeze(-1)
        err = (r - r0).abs().mean()
        if err.item() < thresh:
            break
    T = torch.matmul(r.unsqueeze(-1), c.unsqueeze(-2)) * K
    return T, i + 1


def lico_reference(C, eps, max_iter=100):
    """ymLeiFDU/LICO models/modules/sinkhorn_distance.py ``SinkhornDistance.forward`` loop."""
    batch_size, x_points, y_points = C.shape
    mu = torch.empty(batch_size, x_points, dtype=C.dtype).fill_(1.0 / x_points)
    nu = torch.empty(batch_size, y_points, dtype=C.dtype).fill_(1.0 / y_points)
    u = torch.zeros_like(mu)
    v = torch.zeros_like(nu)

    def M(C, u, v):
        return (-C + u.unsqueeze(-1) + v.unsqueeze(-2)) / eps

    actual_nits = 0
    thresh = 1e-3
    for _ in range(max_iter):
        u1 = u
        u = eps * (torch.log(mu + 1e-8) - torch.logsumexp(M(C, u, v), dim=-1)) + u
        v = eps * (torch.log(nu + 1e-8) - torch.logsumexp(M(C, u, v).transpose(-2, -1), dim=-1)) + v
        err = (u - u1).abs().sum(-1).mean()
        actual_nits += 1
        if err.item() < thresh:
            break
    return torch.exp(M(C, u, v)), actual_nits


def otfusion_reference(F, epsilon, iters=4):
    """SwAV-style assignment of the OTFusion code: row-max shift, 4 iterations, Q = N T.

    ``F`` is (N samples, K classes); the reference works on the transpose (K x N).
    """
    Q = torch.exp((F - F.max(dim=1, keepdim=True).values) / epsilon).t()
    K, B = Q.shape
    Q /= torch.sum(Q)
    for _ in range(iters):
        Q /= torch.sum(Q, dim=1, keepdim=True)  # classes
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)  # samples
        Q /= B
    Q *= B
    return Q.t()


def otfusion_tol_reference(F, epsilon, max_iter, tol):
    """OTFusion's optional variant: iterate until max |T_k - T_k-1| < tol on the mass-1 plan."""
    T = torch.exp((F - F.max(dim=1, keepdim=True).values) / epsilon)
    T = T / T.sum()
    n, k = T.shape
    for i in range(max_iter):  # noqa: B007 (literal port: i is read after the loop)
        T_prev = T
        T = T / T.sum(0, keepdim=True) / k
        T = T / T.sum(1, keepdim=True) / n
        if (T - T_prev).abs().max() < tol:
            break
    return T * n, i + 1


def generic_reference(cost, a, b, reg, order, metric, rule, tol, max_iter):
    """Spec 8.1-8.2 written plainly: one problem at a time, a host check after every iteration.

    Log domain, zero init with -inf on zero mass, ``reg`` scalar or one per problem; returns the
    plans and the per-problem iteration counts.
    """
    flat_c = cost.reshape(-1, *cost.shape[-2:])
    flat_a = a.expand(*cost.shape[:-1]).reshape(flat_c.shape[:2])
    flat_b = b.expand(*cost.shape[:-2], cost.shape[-1]).reshape(-1, flat_c.shape[2])
    flat_reg = torch.as_tensor(reg, dtype=F64).expand(cost.shape[:-2]).reshape(-1)
    problems = []
    for c, a_i, b_i, reg_i in zip(flat_c, flat_a, flat_b, flat_reg, strict=True):
        L, la, lb = -c / reg_i, torch.log(a_i), torch.log(b_i)
        f = torch.where(a_i > 0, 0.0, -math.inf).to(F64)
        g = torch.where(b_i > 0, 0.0, -math.inf).to(F64)
        problems.append(
            dict(L=L, la=la, lb=lb, reg=reg_i, f=f, g=g, f_ref=torch.zeros_like(f), n=0, on=True)
        )

    def rows(p, g):
        f = p["la"] - torch.logsumexp(p["L"] + g, dim=1)
        return torch.where(p["la"] > -math.inf, f, -math.inf)

    def cols(p, f):
        g = p["lb"] - torch.logsumexp(p["L"] + f[:, None], dim=0)
        return torch.where(p["lb"] > -math.inf, g, -math.inf)

    def error(p, f, g):
        plan = torch.exp(p["L"] + f[:, None] + g)
        if metric == "scaling_l1_mean":  # previous scaling := 1 at the first iteration
            return (f.exp() - p["f_ref"].exp()).abs().mean()
        if metric == "potential_l1_sum":
            fin = torch.isfinite(f) & torch.isfinite(p["f"])
            return p["reg"] * torch.where(fin, f - p["f"], 0.0).abs().sum()
        if metric == "marginal_l2":
            if order == "rows_first":
                return torch.linalg.vector_norm(plan.sum(1) - p["la"].exp())
            return torch.linalg.vector_norm(plan.sum(0) - p["lb"].exp())
        return (plan - torch.exp(p["L"] + p["f"][:, None] + p["g"])).abs().max()

    for _ in range(max_iter):
        errs = []
        for p in problems:
            if not p["on"]:
                continue
            if order == "rows_first":
                f = rows(p, p["g"])
                g = cols(p, f)
            else:
                g = cols(p, p["f"])
                f = rows(p, g)
            errs.append(float(error(p, f, g)))
            p.update(f=f, g=g, f_ref=f, n=p["n"] + 1)
        if not errs:
            break
        on = [p for p in problems if p["on"]]
        if rule == "per_problem":
            for p, e in zip(on, errs, strict=True):
                p["on"] = not e < tol
        elif (rule == "all" and all(e < tol for e in errs)) or (
            rule == "batch_mean" and sum(errs) / len(errs) < tol
        ):
            for p in on:
                p["on"] = False
    plans = torch.stack([torch.exp(p["L"] + p["f"][:, None] + p["g"]) for p in problems])
    n_iter = torch.tensor([p["n"] for p in problems])
    return plans.reshape(cost.shape), n_iter.reshape(cost.shape[:-2])


# ----------------------------------------------------------------------------- parity tests


@pytest.mark.parametrize("method", ["auto", "log"])
def test_ram_parity(method):
    """RAM: rows first, scaling_l1_mean, rule 'all', tol 1e-3, LPD row marginal, 1/C columns."""
    rng = np.random.default_rng(20)
    B, N, C = 4, 12, 5
    sim = torch.tensor(rng.uniform(-0.05, 0.35, (B, N, C)))
    cost = 1.0 - torch.softmax(100 * sim, dim=-1)  # RAM's C0, values in [0, 1]
    lpd = torch.tensor(rng.dirichlet(np.ones(N), B))
    label = torch.full((B, C), 1.0 / C, dtype=F64)
    ref_plan, ref_iters = ram_reference(lpd, label, cost, 0.1)
    assert 2 < ref_iters < 100  # the rule, not max_iter, ends the reference loop
    res = sinkhorn(
        cost,
        lpd,
        label[:1],
        0.1,
        order="rows_first",
        max_iter=100,
        tol=1e-3,
        stop_metric="scaling_l1_mean",
        stop_rule="all",
        method=method,
    )
    assert (res.n_iter == ref_iters).all() and res.converged.all()
    torch.testing.assert_close(res.plan, ref_plan, rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("method", ["auto", "log"])
def test_lazsl_parity(method):
    """LaZSL: per (image, class) problem, zero-mass crops, padded descriptors, tol 1e-2."""
    rng = np.random.default_rng(21)
    B, K, N, m_max = 3, 4, 10, 6
    m_k = [2, 6, 3, 5]  # descriptors per class, padded to m_max
    sim = torch.tensor(rng.uniform(0.0, 0.4, (B, K, N, m_max)))  # theta-fused similarity
    crop = torch.tensor(rng.uniform(0, 1, (B, N)))
    keep = crop >= crop.mean(-1, keepdim=True)  # LaZSL's crop selection: about half the rows
    a = keep / keep.sum(-1, keepdim=True)  # 1/|P_pos| on kept crops, 0 otherwise
    col_mask = torch.zeros(K, m_max, dtype=torch.bool)
    b = torch.zeros(K, m_max, dtype=F64)
    for k, m in enumerate(m_k):
        col_mask[k, :m] = True
        b[k, :m] = 1.0 / m
    kw = dict(
        order="rows_first",
        max_iter=100,
        tol=1e-2,
        stop_metric="scaling_l1_mean",
        stop_rule="per_problem",
        method=method,
        col_mask=col_mask[None],
    )
    res = sinkhorn(1.0 - sim, a[:, None].to(F64), b[None], 0.1, **kw)
    score = sinkhorn(
        1.0 - sim, a[:, None].to(F64), b[None], 0.1, output="contract", contract_with=sim, **kw
    ).contraction
    iters = set()
    for i in range(B):
        for k, m in enumerate(m_k):
            K_ = torch.exp(-(1.0 - sim[i, k, :, :m]) / 0.1)[None]
            ref_plan, ref_iters = lazsl_reference(K_, a[i][None].to(F64), b[k, :m][None])
            iters.add(ref_iters)
            assert int(res.n_iter[i, k]) == ref_iters
            torch.testing.assert_close(res.plan[i, k, :, :m], ref_plan[0], rtol=0, atol=PARITY_ATOL)
            assert (res.plan[i, k, :, m:] == 0).all()
            ref_score = (ref_plan[0] * sim[i, k, :, :m]).sum()
            torch.testing.assert_close(score[i, k], ref_score, rtol=0, atol=PARITY_ATOL)
    assert len(iters) > 1  # problems stopped at different iterations: per-problem freezing mattered


@pytest.mark.parametrize("method", ["auto", "log"])
def test_lico_parity(method):
    """LICO: log domain in cost units, potential_l1_sum, batch mean, tol 1e-3, log(1/N + 1e-8)."""
    rng = np.random.default_rng(22)
    B, N, M, d = 4, 20, 12, 9
    feat = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(B, N, d))), dim=-1)
    tok = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(B, M, d))), dim=-1)
    cost = ((feat[:, :, None] - tok[:, None]) ** 2).sum(-1)  # |f_n - g_m|^2 in [0, 4]
    ref_plan, ref_iters = lico_reference(cost, 0.1)
    assert 2 < ref_iters < 100
    log_a = torch.full((N,), math.log(1 / N + 1e-8), dtype=F64)
    log_b = torch.full((M,), math.log(1 / M + 1e-8), dtype=F64)
    res = sinkhorn(
        cost,
        None,
        None,
        0.1,
        log_a=log_a,
        log_b=log_b,
        order="rows_first",
        max_iter=100,
        tol=1e-3,
        stop_metric="potential_l1_sum",
        stop_rule="batch_mean",
        method=method,
    )
    assert (res.n_iter == ref_iters).all()
    torch.testing.assert_close(res.plan, ref_plan, rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("method", ["auto", "log"])
def test_otfusion_parity(method):
    """OTFusion: cols first, f0 = -max_k F / eps, 4 iterations, Q = N T (rows sum to 1)."""
    rng = np.random.default_rng(23)
    N, K, eps = 50, 7, 0.01
    F = torch.tensor(rng.uniform(0, 1.85, (N, K)))
    ref = otfusion_reference(F, eps)
    kw = dict(
        order="cols_first", max_iter=4, tol=None, output_scale="row_stochastic", method=method
    )
    init = (-F.max(dim=1).values[None] / eps, None)
    res = sinkhorn(None, None, None, log_kernel=(F / eps)[None], init=init, **kw)
    assert res.plan.shape == (1, N, K) and int(res.n_iter) == 4
    torch.testing.assert_close(res.plan[0], ref, rtol=0, atol=PARITY_ATOL)
    torch.testing.assert_close(res.plan.sum(-1), torch.ones(1, N, dtype=F64), rtol=0, atol=1e-13)
    # Without the shifted init the 4-iteration answer is different : the init matters.
    plain = sinkhorn(None, None, None, log_kernel=(F / eps)[None], **kw)
    assert (plain.plan[0] - ref).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["auto", "log"])
def test_otfusion_plan_max_abs_parity(method):
    """OTFusion's optional tolerance: plan_max_abs on the mass-1 plan, cols first."""
    rng = np.random.default_rng(24)
    N, K, eps, tol = 30, 5, 0.05, 1e-5
    F = torch.tensor(rng.uniform(0, 1.85, (N, K)))
    ref, ref_iters = otfusion_tol_reference(F, eps, max_iter=50, tol=tol)
    assert 2 < ref_iters < 50
    res = sinkhorn(
        None,
        None,
        None,
        log_kernel=(F / eps)[None],
        init=(-F.max(dim=1).values[None] / eps, None),
        order="cols_first",
        max_iter=50,
        tol=tol,
        stop_metric="plan_max_abs",
        output_scale="row_stochastic",
        method=method,
    )
    assert int(res.n_iter) == ref_iters
    torch.testing.assert_close(res.plan[0], ref, rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("order", ORDERS)
def test_every_metric_and_rule_matches_the_literal_loop(metric, rule, order):
    rng = np.random.default_rng(25)
    cost = torch.tensor(rng.uniform(0, 1, (2, 3, 5, 4)))
    a = torch.tensor(rng.dirichlet(np.ones(5), (2, 3)))
    a[0, 1, 2] = 0.0  # one zero-mass row: exercises the -inf / finite-only conventions
    a = a / a.sum(-1, keepdim=True)
    b = torch.tensor(rng.dirichlet(np.ones(4)))
    reg = torch.tensor(rng.uniform(0.05, 0.5, (2, 3)))
    # Tolerances that stop each metric at different iterations well before max_iter.
    tol = dict(scaling_l1_mean=1e-4, potential_l1_sum=1e-5, marginal_l2=1e-6, plan_max_abs=1e-6)[
        metric
    ]
    ref_plan, ref_iters = generic_reference(cost, a, b, reg, order, metric, rule, tol, 400)
    assert (ref_iters < 400).all()
    if rule == "per_problem":
        assert len(set(ref_iters.flatten().tolist())) > 1  # freezing at different iterations
    for method in ("auto", "log"):
        res = sinkhorn(
            cost,
            a,
            b,
            reg,
            order=order,
            stop_metric=metric,
            stop_rule=rule,
            tol=tol,
            max_iter=400,
            method=method,
        )
        assert torch.equal(res.n_iter, ref_iters), method
        assert res.converged.all()
        torch.testing.assert_close(res.plan, ref_plan, rtol=0, atol=PARITY_ATOL)


# ------------------------------------------------------------------ sync points do not matter


@PROPERTY_SETTINGS
@given(
    case=cases(),
    metric=st.sampled_from(METRICS),
    rule=st.sampled_from(RULES),
    order=st.sampled_from(ORDERS),
    tol=st.sampled_from([1e-3, 1e-5, 1e-7]),
)
def test_check_every_does_not_change_the_result(case, metric, rule, order, tol):
    cost, a, b = case.tensors()
    kw = dict(tol=tol, stop_metric=metric, stop_rule=rule, order=order, max_iter=300, warn=False)
    fields = ("plan", "n_iter", "converged", "err")
    for method in ("auto", "log"):
        base = sinkhorn(cost, a, b, case.reg, method=method, check_every=10, **kw)
        for check_every in (1, 7):
            other = sinkhorn(cost, a, b, case.reg, method=method, check_every=check_every, **kw)
            # Frozen problems never change, so the sync period cannot matter: identical bits.
            for name in fields:
                assert torch.equal(getattr(other, name), getattr(base, name)), (method, name)
    # No sync at all (log path, always max_iter iterations with frozen problems): the same
    # iteration counts; the plan differs from the scaling path by round-off only (1e-12).
    nosync = sinkhorn(cost, a, b, case.reg, check_every=None, **kw)
    auto = sinkhorn(cost, a, b, case.reg, method="auto", **kw)
    assert torch.equal(nosync.n_iter, auto.n_iter)
    torch.testing.assert_close(nosync.plan, auto.plan, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["auto", "log"])
def test_first_iteration_error_conventions(method):
    """The error after iteration 1 : scaling_l1_mean compares with a previous scaling
    of 1 on every real row whatever the init (zero-mass rows add 1 / N_real each, padding adds
    nothing); the other metrics compare with the initial potentials."""
    rng = np.random.default_rng(27)
    cost = torch.tensor(rng.uniform(0, 1, (5, 4)))
    a = torch.tensor([0.4, 0.0, 0.3, 0.3, 0.7], dtype=F64)  # row 4 is padding (row_mask)
    row_mask = torch.tensor([True, True, True, True, False])
    f0 = torch.tensor(rng.normal(size=5))
    g0 = torch.tensor(rng.normal(size=4))
    reg = 0.2
    L = -cost / reg
    b = torch.full((4,), 0.25, dtype=F64)
    f1 = torch.log(a[:4]) - torch.logsumexp(L[:4] + g0, dim=1)  # rows first, from g0
    g1 = torch.log(b) - torch.logsumexp(L[:4] + f1[:, None], dim=0)
    plan1 = torch.exp(L[:4] + f1[:, None] + g1)
    plan0 = torch.exp(L[:4] + f0[:4, None] + g0)
    plan0[1] = 0.0  # the zero-mass row starts at -inf whatever f0 says
    pos = torch.tensor([True, False, True, True])
    expected = dict(
        scaling_l1_mean=(f1.exp() - 1.0).abs().sum() / 4,  # 4 real rows, the zero-mass one adds 1
        potential_l1_sum=reg * (f1 - f0[:4])[pos].abs().sum(),
        marginal_l2=torch.linalg.vector_norm(plan1.sum(1) - a[:4]),
        plan_max_abs=(plan1 - plan0).abs().max(),
    )
    for metric, value in expected.items():
        res = sinkhorn(
            cost,
            a,
            None,
            reg,
            row_mask=row_mask,
            init=(f0, g0),
            max_iter=1,
            tol=1e-30,
            stop_metric=metric,
            method=method,
            warn=False,
        )
        # The same few operations in a different order: 1e-12 relative.
        torch.testing.assert_close(res.err, value, rtol=1e-12, atol=0, msg=metric)


def test_tol_none_runs_exactly_max_iter():
    cost = torch.rand(3, 4, 5, dtype=F64)
    res = sinkhorn(cost, None, None, 1.0, max_iter=17, tol=None)
    assert (res.n_iter == 17).all()
    # No metric is computed: not converged (by definition) and err is inf, and no warning.
    assert not res.converged.any() and torch.isinf(res.err).all()


# ----------------------------------------------------------------------------------- warnings


def _easy_and_hard():
    """Problem 0 converges in a few iterations (reg 10), problem 1 (reg 0.05) needs hundreds."""
    rng = np.random.default_rng(26)
    cost = torch.tensor(rng.uniform(0, 1, (2, 6, 5)))
    return cost, torch.tensor([10.0, 0.05], dtype=F64)


@pytest.mark.parametrize("method", ["auto", "log"])
def test_non_convergence_warns(method):
    cost, reg = _easy_and_hard()
    kw = dict(tol=1e-12, stop_metric="marginal_l2", max_iter=5, method=method)
    with pytest.warns(
        SinkhornWarning,
        match=r"1 of 2 problems did not reach tol=1e-12 "
        r"\(marginal_l2\) within max_iter=5",
    ):
        res = sinkhorn(cost, None, None, reg, **kw)
    assert res.converged.tolist() == [True, False]
    assert int(res.n_iter[0]) < 5 and int(res.n_iter[1]) == 5
    assert res.err[0] < 1e-12 <= res.err[1]
    # warn=False silences exactly this; any warning would raise inside this block.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = sinkhorn(cost, None, None, reg, warn=False, **kw)
    assert torch.equal(quiet.plan, res.plan) and quiet.converged.tolist() == [True, False]


# ------------------------------------------------- coupled rules with the scaling-path fallback


@pytest.mark.parametrize("rule", ["all", "batch_mean"])
@pytest.mark.parametrize("metric", METRICS)
def test_coupled_rules_with_fallback_match_the_log_domain(rule, metric):
    """A batch-mate that falls back to the log domain must not desynchronise 'all'/'batch_mean'.

    Problem 1 (one row, reg 1e-3, costs 5 units apart) overflows the scaling domain at its first
    iteration, which is also where every problem converges: under 'all' and 'batch_mean' every
    problem must stop at the same iteration, exactly as on the log-domain path.
    """
    cost = torch.tensor([[[0.3, 0.1, 0.7]], [[0.0, 5.0, 10.0]]], dtype=F64)
    reg = torch.tensor([0.5, 1e-3], dtype=F64)
    kw = dict(tol=1e-6, stop_rule=rule, stop_metric=metric, max_iter=50)
    log = sinkhorn(cost, None, None, reg, method="log", **kw)
    auto = sinkhorn(cost, None, None, reg, method="auto", **kw)
    assert log.n_iter[0] == log.n_iter[1]  # the rule's own semantics
    assert torch.equal(auto.n_iter, log.n_iter)
    # Round-off only (the N = 1 problems are exact after one iteration).
    torch.testing.assert_close(auto.plan, log.plan, rtol=0, atol=1e-14)


def test_sync_free_loop_never_reads_a_device_value(monkeypatch):
    # check_every=None promises a loop without device->host synchronisation (graph-capturable).
    # On CPU there is no device sync to observe, so forbid every tensor->host read while the loop
    # runs: .item(), .tolist() and bool(tensor) (what `if tensor:` does).
    import importlib

    mod = importlib.import_module("ramlico.ot.sinkhorn")
    real_solve = mod._solve

    def guarded(*args, **kwargs):
        def refuse(*_a, **_k):
            raise AssertionError("host read inside the Sinkhorn loop")

        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__"):
                m.setattr(torch.Tensor, name, refuse)
            return real_solve(*args, **kwargs)

    monkeypatch.setattr(mod, "_solve", guarded)
    cost = torch.rand(4, 6, 5, dtype=torch.float64)
    for tol in (None, 1e-6):
        res = sinkhorn(cost, None, None, 0.1, max_iter=20, tol=tol, check_every=None, warn=False)
        assert bool((res.n_iter == 20).all()) if tol is None else int(res.n_iter.max()) <= 20
    with pytest.raises(AssertionError, match="host read"):  # the guard does catch the fast path
        sinkhorn(cost, None, None, 0.1, max_iter=20, tol=1e-6, check_every=10, warn=False)
