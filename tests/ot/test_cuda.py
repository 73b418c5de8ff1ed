"""CUDA tests of the Sinkhorn engine (marker ``gpu``: skipped without a CUDA device).

They are the first step of ``benchmarks/gpu_suite.py``: the engine on CUDA equals the CPU
engine, bf16/fp16 inputs under CUDA autocast give the fp32 answer, a fixed-iteration solve reads
nothing back on the host per iteration (counted with ``torch.cuda.set_sync_debug_mode``), and
the CUDA-graph and compiled fast paths equal the default driver, fallback included.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ramlico.ot import clear_fast_path_cache, fast_path_cache_info, sinkhorn
from ramlico.ot.fast import GRAPH_MAX_ENTRIES, resolve_fast_mode

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
F64 = torch.float64
FIELDS = ("plan", "f", "g", "n_iter", "converged", "err", "value")


@pytest.fixture(autouse=True)
def _fresh_graph_cache():
    clear_fast_path_cache()
    yield
    clear_fast_path_cache()


def _problem(batch=(8,), n=196, m=17, dtype=torch.float32, seed=0):
    """RAM-like costs in [0, 2] and strictly positive marginals summing to 1 (on CPU)."""
    gen = torch.Generator().manual_seed(seed)
    cost = torch.rand(*batch, n, m, generator=gen, dtype=dtype) * 2
    a = torch.softmax(torch.randn(*batch, n, generator=gen, dtype=dtype), -1)
    b = torch.softmax(torch.randn(*batch, m, generator=gen, dtype=dtype), -1)
    return cost, a, b


def _cuda(*tensors):
    return tuple(t.to(CUDA) if isinstance(t, torch.Tensor) else t for t in tensors)


def _hard_cost() -> torch.Tensor:
    """reg = 1e-3 with rows and columns 0.5 cost units apart: the scaling domain falls back."""
    rng = np.random.default_rng(11)
    steps = 0.5 * torch.arange(6, dtype=F64)[:, None] + 0.5 * torch.arange(5, dtype=F64)
    return torch.tensor(rng.uniform(0, 0.1, (6, 5))) + steps


def _equal_results(res, ref) -> None:
    for name in FIELDS:
        assert torch.equal(getattr(res, name), getattr(ref, name)), name


# ---------------------------------------------------------------------------- CUDA vs CPU

CASES = {
    "ram_fixed": dict(max_iter=100),
    "cols_first_fixed": dict(max_iter=50, order="cols_first"),
    "unbalanced_fixed": dict(max_iter=50, reg_m=(1.0, float("inf"))),
    "log_no_sync": dict(max_iter=50, check_every=None),
    "converged_marginal_l2": dict(max_iter=3000, tol=1e-6, stop_metric="marginal_l2"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_on_cuda_equals_cpu(name):
    kw = CASES[name]
    cost, a, b = _problem()
    ref = sinkhorn(cost, a, b, 0.1, **kw)
    res = sinkhorn(*_cuda(cost, a, b), 0.1, **kw)
    assert res.plan.is_cuda and res.plan.dtype == torch.float32
    # Different exp/log kernels and reduction orders: fp32 round-off grown over the iterations.
    torch.testing.assert_close(res.plan.cpu(), ref.plan, rtol=1e-3, atol=1e-7)
    if kw.get("tol") is None:
        assert torch.equal(res.n_iter.cpu(), ref.n_iter)
    else:
        assert bool(res.converged.all()) and bool(ref.converged.all())


def test_padded_problems_on_cuda_equal_cpu():
    cost, a, b = _problem(m=12)
    col_mask = torch.arange(12) < torch.tensor([12, 7, 3, 12, 5, 9, 12, 1])[:, None]
    ref = sinkhorn(cost, a, None, 0.1, col_mask=col_mask, max_iter=60)
    res = sinkhorn(*_cuda(cost, a), None, 0.1, col_mask=col_mask.to(CUDA), max_iter=60)
    assert bool((res.plan.cpu()[~col_mask[:, None, :].expand_as(ref.plan)] == 0).all())
    torch.testing.assert_close(res.plan.cpu(), ref.plan, rtol=1e-3, atol=1e-7)


# -------------------------------------------------------------------------------- precision


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("tol", [None, 1e-6], ids=["fixed", "tol"])
def test_low_precision_inputs_under_cuda_autocast_give_the_fp32_answer(low, tol):
    cost, _, _ = _problem(m=4)
    cost = cost.to(CUDA, low)
    b = torch.tensor([0.5, 0.25, 0.125, 0.125], device=CUDA, dtype=low)  # exact in both dtypes
    kw = dict(tol=tol, stop_metric="marginal_l2", max_iter=500 if tol else 100)
    with torch.autocast("cuda", dtype=low):
        res = sinkhorn(cost, None, b, 0.1, **kw)
    ref = sinkhorn(cost.float(), None, b.float(), 0.1, **kw)
    assert res.plan.dtype == res.f.dtype == res.value.dtype == torch.float32
    _equal_results(res, ref)  # the solver upcasts and disables autocast: the same kernels


def test_bf16_marginals_of_50_entries_are_accepted_on_cuda():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 50, generator=gen).to(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        a = torch.softmax(logits, -1).to(torch.bfloat16)  # e.g. a model's region weights
    cost = torch.rand(6, 50, 9, generator=gen).to(CUDA)
    res = sinkhorn(cost, a, None, 0.1, tol=1e-6, stop_metric="marginal_l2", max_iter=2000)
    target = a.float() / a.float().sum(-1, keepdim=True)  # a, renormalised in fp32
    torch.testing.assert_close(res.plan.sum(-1), target, rtol=0, atol=2e-6)
    torch.testing.assert_close(res.plan.sum(-2), torch.full_like(res.plan[:, 0], 1 / 9))


# ------------------------------------------------------------------------------ host syncs


def _count_syncs(fn) -> int:
    """Synchronising CUDA calls made by ``fn`` (``torch.cuda.set_sync_debug_mode``)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "kw", [dict(), dict(fast="compile"), dict(fast="off", check_every=None)],
    ids=["auto_graph", "compiled_graph", "log_no_sync"],
)  # fmt: skip
def test_no_host_sync_per_iteration_with_fixed_iterations(kw):
    cost, a, b = _cuda(*_problem())

    def run(n: int):
        return sinkhorn(cost, a, b, 0.1, max_iter=n, **kw)

    for n in (10, 10, 100, 100):  # a shape's second call captures its graph
        run(n)
    few, many = _count_syncs(lambda: run(10)), _count_syncs(lambda: run(100))
    assert few == many, (few, many)  # the count does not grow with the iterations
    assert many <= 16  # input validation, the range flag and the finiteness check
    # The counter does see syncs: the default driver reads its range flag every 10 iterations.
    default = _count_syncs(lambda: sinkhorn(cost, a, b, 0.1, max_iter=100, fast="off"))
    assert default >= many + 9


# ------------------------------------------------------------------------------ fast paths


def test_auto_takes_the_graph_path_only_for_fixed_iterations():
    cost, a, b = _cuda(*_problem())
    sinkhorn(cost, a, b, 0.1, max_iter=20, tol=1e-3, warn=False)
    assert fast_path_cache_info()["misses"] == 0
    counts = []
    for scale in (1.0, 0.5, 0.25):  # seen (eager), captured, replayed
        sinkhorn(cost * scale, a, b, 0.1, max_iter=20)
        info = fast_path_cache_info()
        counts.append((info["entries"], info["misses"], info["hits"]))
    assert counts == [(0, 0, 0), (1, 1, 0), (1, 1, 1)]
    fixed = dict(tol=None, grad="none", max_iter=4)
    assert resolve_fast_mode("auto", CUDA, **fixed, entries=GRAPH_MAX_ENTRIES) == "graph"
    assert resolve_fast_mode("auto", CUDA, **fixed, entries=GRAPH_MAX_ENTRIES + 1) == "off"


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((8, 196, 17), dict()),
        ((8, 196, 65), dict(order="cols_first")),
        ((4, 200, 100), dict()),  # N * M >= 16384: the BLAS mat-vec branch
        ((2, 10, 91, 16), dict(check_every=None)),  # LaZSL-like, log-domain path
    ],
    ids=["ram_zsl", "ram_gzsl_cols_first", "blas", "lazsl_log"],
)
def test_graph_path_equals_the_default_driver(shape, kw):
    for seed in (0, 1, 2):  # eager, captured, then replayed with new data
        cost, a, b = _cuda(*_problem(shape[:-2], *shape[-2:], seed=seed))
        ref = sinkhorn(cost, a, b, 0.1, max_iter=100, fast="off", **kw)
        res = sinkhorn(cost, a, b, 0.1, max_iter=100, fast="graph", **kw)
        # The graph replays the default driver's kernels; the tolerance only leaves room for
        # cuBLAS picking another algorithm under capture (BLAS case).
        torch.testing.assert_close(res.plan, ref.plan, rtol=1e-5, atol=1e-9)
        assert torch.equal(res.n_iter, ref.n_iter)
    assert fast_path_cache_info()["hits"] == 1


def test_graph_path_falls_back_to_the_default_driver():
    easy = torch.rand(6, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    cost = torch.stack([easy, _hard_cost()]).to(CUDA)
    reg = torch.tensor([0.5, 1e-3], dtype=F64, device=CUDA)
    ref = sinkhorn(cost, None, None, reg, max_iter=40, fast="off")
    for calls in (1, 2):  # the eager first sighting, then the captured graph
        res = sinkhorn(cost, None, None, reg, max_iter=40, fast="graph")
        _equal_results(res, ref)  # the default driver ran: identical bits
        assert fast_path_cache_info()["fallbacks"] == calls


def test_compiled_path_on_cuda_equals_the_default_driver():
    cost, a, b = _cuda(*_problem(m=65))
    ref = sinkhorn(cost, a, b, 0.15, max_iter=100, fast="off")
    for _ in range(2):  # the compiled loop eagerly, then captured in a graph
        res = sinkhorn(cost, a, b, 0.15, max_iter=100, fast="compile")
        # Triton reorders the reductions: fp32 round-off on every entry.
        torch.testing.assert_close(res.plan, ref.plan, rtol=2e-5, atol=1e-9)
    assert fast_path_cache_info()["misses"] == 1


def test_otfusion_size_fixed_solve_on_cuda():
    # One 50,000 x 1,000 problem, 4 iterations, cols first (OTFusion). Above GRAPH_MAX_ENTRIES
    # "auto" leaves it to the default driver; forced, the graph path must still give the
    # log-domain answer (|L| up to 185: fp32 round-off of exponents ~185, ~1e-5 relative).
    gen = torch.Generator(device=CUDA).manual_seed(0)
    scores = torch.rand(1, 50_000, 1000, generator=gen, device=CUDA) * 1.85
    init = (-scores.amax(-1) / 0.01, None)
    kw = dict(log_kernel=scores / 0.01, order="cols_first", init=init, max_iter=4)
    for _ in range(2):  # the second call runs the captured graph
        res = sinkhorn(None, None, None, **kw, output_scale="row_stochastic", fast="graph")
    ref = sinkhorn(None, None, None, **kw, output_scale="row_stochastic", method="log")
    torch.testing.assert_close(res.plan, ref.plan, rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(res.plan.sum(-1), torch.ones_like(res.plan[..., 0]))
