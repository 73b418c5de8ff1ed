"""Tests of ``ramlico.ot.fast``, the fixed-iteration fast path, on CPU.

The CUDA graph itself needs a GPU (tests/ot/test_cuda.py, marker ``gpu``). Here: the compiled
iteration (``fast="compile"``, inductor's C++ backend) equals the default driver up to rounding;
the graph's data path (static buffers, the cache, the fallback) runs with ``capture=False`` and
equals the default driver bit for bit; the mode resolution and its errors.
"""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from ramlico.ot import fast_path_cache_info, sinkhorn
from ramlico.ot.fast import SKIP_AFTER_FALLBACK, GraphCache, resolve_fast_mode, solve_fixed
from ramlico.ot.problem import prepare_problem

engine = importlib.import_module("ramlico.ot.sinkhorn")
F64 = torch.float64
FIELDS = ("plan", "f", "g", "n_iter", "converged", "err", "value")
# torch.compile on CPU builds C++ (inductor); without a compiler those tests cannot run.
needs_cxx = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
    reason="torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH",
)


def _problem(dtype=F64, batch=(3,), n=9, m=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cost = torch.rand(*batch, n, m, generator=gen, dtype=dtype) * 2
    a = torch.softmax(torch.randn(*batch, n, generator=gen, dtype=dtype), -1)
    b = torch.softmax(torch.randn(*batch, m, generator=gen, dtype=dtype), -1)
    return cost, a, b


def _hard_cost() -> torch.Tensor:
    """reg = 1e-3 with rows and columns 0.5 cost units apart: the scaling domain must fall back
    (the same construction as tests/ot/test_sinkhorn.py)."""
    rng = np.random.default_rng(11)
    steps = 0.5 * torch.arange(6, dtype=F64)[:, None] + 0.5 * torch.arange(5, dtype=F64)
    return torch.tensor(rng.uniform(0, 0.1, (6, 5))) + steps


def _assert_results_equal(res, ref, atol: float) -> None:
    for name in FIELDS:
        x, y = getattr(res, name), getattr(ref, name)
        if name in ("n_iter", "converged"):
            assert torch.equal(x, y), name
        elif atol == 0:
            assert torch.equal(x, y), name
        else:
            fin = torch.isfinite(y)
            assert torch.equal(fin, torch.isfinite(x)), name  # -inf on zero mass in both
            torch.testing.assert_close(x[fin], y[fin], rtol=0, atol=atol, msg=name)


# ------------------------------------------------------------------------- compiled iteration

COMPILED_CASES = {
    "rows_first": dict(),
    "cols_first_zero_mass": dict(order="cols_first", zero_mass=True),
    "unbalanced": dict(reg_m=(1.0, float("inf"))),
    "log_domain_no_sync": dict(check_every=None),
}


@needs_cxx
@pytest.mark.parametrize("name", sorted(COMPILED_CASES))
def test_compiled_path_equals_default_path_fp64(name):
    kw = dict(COMPILED_CASES[name])
    cost, a, b = _problem()
    if kw.pop("zero_mass", False):
        a = a.clone()
        a[0, :3] = 0
        a = a / a.sum(-1, keepdim=True)
    ref = sinkhorn(cost, a, b, 0.1, max_iter=30, fast="off", **kw)
    res = sinkhorn(cost, a, b, 0.1, max_iter=30, fast="compile", **kw)
    # Inductor reorders the reductions: fp64 round-off (~1e-16 per step) over 30 iterations.
    _assert_results_equal(res, ref, atol=1e-13)
    assert torch.equal(res.plan == 0, ref.plan == 0)  # zero-mass rows exactly zero in both


@needs_cxx
def test_compiled_path_equals_default_path_fp32_ram_shape():
    # RAM's problem at a reduced batch: 4 images x 196 regions x 17 labels, reg 0.1, 100 iters.
    gen = torch.Generator().manual_seed(1)
    cost = 1 - torch.softmax(100 * torch.rand(4, 196, 17, generator=gen) * 0.02, -1)
    a = torch.softmax(torch.randn(4, 196, generator=gen), -1)
    ref = sinkhorn(cost, a, None, 0.1, max_iter=100, fast="off")
    graphs = counters["stats"]["unique_graphs"]
    res = sinkhorn(cost, a, None, 0.1, max_iter=100, fast="compile")
    assert counters["stats"]["unique_graphs"] > graphs  # inductor compiled this shape
    # fp32 reductions in another order: a few ulps relative on every plan entry.
    torch.testing.assert_close(res.plan, ref.plan, rtol=2e-5, atol=1e-9)
    assert torch.equal(res.n_iter, ref.n_iter) and not res.converged.any()


def test_compiled_path_keeps_blas_mat_vecs_eager():
    # N * M = 20,000 >= 16,384: the scaling path uses BLAS mat-vecs, a single pass already; the
    # compiled mat-vec measured 2.5-4x slower on CPU, so these problems keep the eager iteration.
    cost, a, b = _problem(n=200, m=100)
    graphs = counters["stats"]["unique_graphs"]
    res = sinkhorn(cost, a, b, 0.05, max_iter=20, fast="compile")
    assert counters["stats"]["unique_graphs"] == graphs  # nothing compiled
    _assert_results_equal(res, sinkhorn(cost, a, b, 0.05, max_iter=20, fast="off"), atol=0)


@needs_cxx
def test_compiled_path_falls_back_to_the_default_driver_bitwise():
    cost = torch.stack([torch.rand(6, 5, dtype=F64, generator=torch.Generator().manual_seed(2)),
                        _hard_cost()])  # fmt: skip
    reg = torch.tensor([0.5, 1e-3], dtype=F64)
    ref = sinkhorn(cost, None, None, reg, max_iter=40, fast="off")
    res = sinkhorn(cost, None, None, reg, max_iter=40, fast="compile")
    # The fast run is discarded and the default driver runs: identical bits.
    _assert_results_equal(res, ref, atol=0)


# ------------------------------------------------------------------ graph data path (no capture)


def _solve_static(cache, cost, a, b, reg, max_iter=30, order="rows_first"):
    p = prepare_problem(cost, a, b, reg)
    f0, g0 = engine._initial_potentials(p, None)
    points = engine._boundaries(max_iter, 10, 10)
    return solve_fixed(
        p, f0, g0, "graph", order=order, points=points, absorb_every=10, use_log=False,
        cache=cache,
    )  # fmt: skip


@pytest.mark.parametrize("order", ["rows_first", "cols_first"])
def test_static_buffers_give_the_default_bits_and_no_stale_data(order):
    cache = GraphCache(capture=False)
    # 1st call of the shape: eager loop, nothing kept; 2nd: the entry (buffers) is made; 3rd:
    # the entry is reused with other data and must not return the 2nd call's answer.
    counts = []
    for seed in (0, 1, 2):
        cost, a, b = _problem(seed=seed)
        ref = sinkhorn(cost, a, b, 0.1, max_iter=30, order=order, fast="off")
        f, g = _solve_static(cache, cost, a, b, 0.1, order=order)
        assert torch.equal(f, ref.f) and torch.equal(g, ref.g)
        counts.append((cache.misses, cache.hits, len(cache.entries)))
    assert counts == [(0, 0, 0), (1, 0, 1), (1, 1, 1)]


def test_broadcast_inputs_keep_their_compact_buffers():
    # b shared by the batch (1, M): the static buffer stays (1, M), the view is broadcast.
    cost, a, b = _problem(batch=(4,))
    b = b[:1]
    cache = GraphCache(capture=False)
    for _ in range(2):  # the second sighting makes the entry
        f, g = _solve_static(cache, cost, a, b, 0.1)
    ref = sinkhorn(cost, a, b, 0.1, max_iter=30, fast="off")
    assert torch.equal(f, ref.f) and torch.equal(g, ref.g)
    entry = next(iter(cache.entries.values()))
    assert entry.buffers["log_b"].shape == (1, 5)
    # The same shape but b per problem is another layout, hence another key.
    for _ in range(2):
        _solve_static(cache, cost, a, b.expand(4, 5).clone(), 0.1)
    assert len(cache.entries) == 2


def test_cache_is_least_recently_used_and_bounded():
    cache = GraphCache(size=2, capture=False)
    shapes = [(5, 3), (6, 3), (5, 3), (7, 3)]
    for n, m in shapes:
        cost, a, b = _problem(n=n, m=m)
        for _ in range(2):  # seen, then kept
            _solve_static(cache, cost, a, b, 0.1)
    # (5,3) was used again before (7,3) arrived, so (6,3) was the one dropped.
    kept = sorted(entry.buffers["log_kernel"].shape[-2] for entry in cache.entries.values())
    assert kept == [5, 7] and (cache.hits, cache.misses) == (2, 3)


def test_out_of_range_returns_none_then_skips_the_fast_path():
    cache = GraphCache(capture=False)
    cost = _hard_cost()
    assert _solve_static(cache, cost, None, None, 1e-3) is None  # first sighting: eager loop
    assert cache.fallbacks == 1 and not cache.entries
    assert _solve_static(cache, cost, None, None, 1e-3) is None  # the entry's run
    entry = next(iter(cache.entries.values()))
    assert entry.skip == SKIP_AFTER_FALLBACK and cache.fallbacks == 2
    # The next calls of this shape go straight to the default driver without running the entry.
    entry.fn = None  # would raise if called
    for left in range(SKIP_AFTER_FALLBACK - 1, SKIP_AFTER_FALLBACK - 4, -1):
        assert _solve_static(cache, cost, None, None, 1e-3) is None
        assert entry.skip == left


def test_a_failed_capture_warns_once_and_the_shape_runs_eagerly(monkeypatch):
    fast = importlib.import_module("ramlico.ot.fast")

    def refuse(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(fast, "_GraphEntry", refuse)
    cache = GraphCache(capture=False)
    cost, a, b = _problem()
    ref = sinkhorn(cost, a, b, 0.1, max_iter=30, fast="off")
    _solve_static(cache, cost, a, b, 0.1)  # first sighting: eager, no capture tried
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .*not permitted"):
        f, g = _solve_static(cache, cost, a, b, 0.1)
    assert torch.equal(f, ref.f) and torch.equal(g, ref.g)  # the eager loop's answer
    f, g = _solve_static(cache, cost, a, b, 0.1)  # no second attempt, no second warning
    assert torch.equal(f, ref.f) and len(cache.failed) == 1 and not cache.entries


# ------------------------------------------------------------------------------- mode choice


def test_mode_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    fixed = dict(tol=None, grad="none", max_iter=100)
    assert resolve_fast_mode("auto", cpu, **fixed) == "off"  # no compile cost unless asked for
    assert resolve_fast_mode("compile", cpu, **fixed) == "compile"
    assert resolve_fast_mode("off", cpu, **fixed) == "off"
    expected = "graph" if torch.cuda.is_available() else "off"
    assert resolve_fast_mode("auto", cuda, **fixed) == expected
    for other in (dict(tol=1e-3), dict(grad="unrolled"), dict(max_iter=0)):
        assert resolve_fast_mode("auto", cuda, **{**fixed, **other}) == "off"


@pytest.mark.parametrize(
    "fast, kw, match",
    [
        ("graph", dict(), r"fast='graph' captures a CUDA graph and needs a CUDA tensor"),
        ("compile", dict(tol=1e-3), r"fast='compile' runs fixed-iteration solves only.*tol=0.001"),
        ("compile", dict(grad="unrolled"), r"needs tol=None, grad='none'"),
        ("fastest", dict(), r"fast='fastest' is not supported; choose one of"),
    ],
)
def test_fast_mode_errors_name_the_fix(fast, kw, match):
    cost, a, b = _problem()
    with pytest.raises(ValueError, match=match):
        sinkhorn(cost, a, b, 0.1, max_iter=10, fast=fast, warn=False, **kw)


def test_auto_on_cpu_leaves_the_graph_cache_alone():
    before = fast_path_cache_info()
    cost, a, b = _problem()
    res = sinkhorn(cost, a, b, 0.1, max_iter=10)
    assert fast_path_cache_info() == before
    assert torch.equal(res.plan, sinkhorn(cost, a, b, 0.1, max_iter=10, fast="off").plan)
