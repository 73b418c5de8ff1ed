"""The fixed-iteration fast path of :func:`ramlico.ot.sinkhorn`: the whole solve on the device.

With ``tol=None`` a solve is a fixed sequence of tensor operations: ``max_iter`` iterations of
the stabilised scaling-domain path (or the log-domain path), with absorptions at fixed
iterations. The default driver still synchronises with the host at every absorption point, to
ask whether some problem's scalings left the safe range (and then re-runs that stretch in the
log domain). The fast path runs the same operations without asking: it accumulates the
out-of-range test in a device flag and reads it once, at the end. If the flag is set, the result
is thrown away and the default stabilised driver solves the problem again, so the answer is
always the default path's::

    fast path, flag clear  ==  default path, no fallback taken (the same operations)
    fast path, flag set    ->  default path (with its log-domain fallback)

Two ways to make the fixed loop cheap:

* ``"graph"`` (CUDA): the loop is captured in a CUDA graph on the second call of a problem shape
  (the first runs it eagerly) and replayed; every later call copies its inputs into the graph's
  static buffers and launches one graph instead of ~10 kernels per iteration. Same kernels, same
  bits as the default path.
* ``"compile"`` (CPU or CUDA): one iteration is compiled with ``torch.compile`` (fused
  multiply-and-sum, no ``N x M`` temporaries; problems on the BLAS mat-vec branch keep the eager
  iteration); on CUDA the loop is also captured in a graph. Equal to the default path up to
  floating-point rounding (reductions are reordered).

``fast="auto"`` (the default of :func:`~ramlico.ot.sinkhorn`) picks ``"graph"`` on CUDA for
fixed-iteration solves without autograd of up to :data:`GRAPH_MAX_ENTRIES` kernel entries, and
the default driver everywhere else (on CPU a first ``torch.compile`` costs seconds, so it is
only used when asked for).

The captured graphs are kept in a small least-recently-used cache (one entry per shape, dtype,
device and solver setting; :data:`GRAPH_CACHE_SIZE` entries). Each entry holds static copies of
the problem's tensors and the graph's working memory (about three problem-size buffers); free
them with :func:`clear_fast_path_cache`. After a fallback, an entry sends the next
:data:`SKIP_AFTER_FALLBACK` calls of its shape straight to the default driver, so inputs that
keep leaving the safe range do not pay for two solves each time.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ramlico.ot.iterations import LogDomain, ScalingDomain
from ramlico.ot.problem import Problem

__all__ = [
    "FAST_MODES",
    "GRAPH_CACHE_SIZE",
    "GRAPH_MAX_ENTRIES",
    "SKIP_AFTER_FALLBACK",
    "clear_fast_path_cache",
    "fast_path_cache_info",
    "fixed_iterations",
    "resolve_fast_mode",
    "solve_fixed",
]

Tensor = torch.Tensor
FAST_MODES = ("auto", "off", "graph", "compile")
GRAPH_CACHE_SIZE = 8
SKIP_AFTER_FALLBACK = 10
GRAPH_MAX_ENTRIES = 2**25  # ~33.5M: RAM, LICO and a 32-image LaZSL batch; not OTFusion's 50M
# The tensors of a Problem that the iterations read; everything else is a Python constant.
_PROBLEM_TENSORS = ("log_kernel", "log_a", "log_b", "row_real", "reg", "n_rows", "empty")


def resolve_fast_mode(
    fast: str,
    device: torch.device,
    *,
    tol: float | None,
    grad: str,
    max_iter: int,
    entries: int = 0,
) -> str:
    """The fast-path mode a call runs with: ``"off"``, ``"graph"`` or ``"compile"``.

    ``"auto"`` takes ``"graph"`` on CUDA for fixed-iteration solves of at most
    :data:`GRAPH_MAX_ENTRIES` kernel entries in all (beyond that an iteration is bound by memory
    bandwidth, launches are a negligible share and a graph would only hold memory).

    Args:
        fast: the caller's choice, one of :data:`FAST_MODES`.
        device: where the problem lives.
        tol, grad, max_iter: the call's settings; the fast path needs ``tol=None`` (fixed
            iterations), ``grad="none"`` and ``max_iter >= 1``.
        entries: number of kernel entries of the whole batch (``prod(*batch) * N * M``).

    Raises:
        ValueError: unknown ``fast``, or ``"graph"``/``"compile"`` asked for where they cannot
            run (``"graph"`` off CUDA, inside another CUDA-graph capture, with a tolerance or
            with autograd).
    """
    if fast not in FAST_MODES:
        raise ValueError(f"fast={fast!r} is not supported; choose one of {FAST_MODES}")
    if fast == "off":
        return "off"
    fixed = tol is None and grad == "none" and max_iter >= 1
    on_cuda = device.type == "cuda" and torch.cuda.is_available()
    capturing = on_cuda and torch.cuda.is_current_stream_capturing()
    tracing = torch.compiler.is_compiling()
    if fast == "auto":
        small = entries <= GRAPH_MAX_ENTRIES
        ok = on_cuda and fixed and small and not capturing and not tracing
        return "graph" if ok else "off"
    if not fixed:
        raise ValueError(
            f"fast={fast!r} runs fixed-iteration solves only: it needs tol=None, grad='none' and "
            f"max_iter >= 1 (got tol={tol!r}, grad={grad!r}, max_iter={max_iter}). Use "
            "fast='auto' to take the fast path only where it applies."
        )
    if fast == "graph" and not on_cuda:
        raise ValueError(
            f"fast='graph' captures a CUDA graph and needs a CUDA tensor, got device {device}; "
            "use fast='compile' (torch.compile, any device) or fast='auto'"
        )
    if capturing or tracing:
        raise ValueError(
            f"fast={fast!r} cannot run inside a CUDA-graph capture or torch.compile trace; pass "
            "fast='off' and check_every=None there (the log-domain loop never syncs)"
        )
    return fast


def _advance(path: LogDomain | ScalingDomain, active: Tensor, state: Any) -> Any:
    """One iteration for the ``active`` problems; frozen ones keep their state."""
    new: Any = path.iterate(state)  # the same state type as ``state`` (the path's own)
    return path.where(active, new, state)


@functools.cache
def _compiled_advance() -> Callable:
    """:func:`_advance` through ``torch.compile`` (built once; it recompiles per shape)."""
    return torch.compile(_advance, fullgraph=True, dynamic=False)


def fixed_iterations(
    p: Problem,
    f0: Tensor,
    g0: Tensor,
    *,
    order: str,
    points: Sequence[int],
    absorb_every: int,
    use_log: bool,
    compiled: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``points[-1]`` iterations without reading anything back on the host.

    The iterations are those of the default driver with ``tol=None``: after every sync point
    ``k`` in ``points`` the scaling-domain path tests its range and absorbs (at ``k = 1`` and
    multiples of ``absorb_every``). Here the range test only sets a flag.

    Args:
        p: the problem; ``f0, g0``: ``(*batch, N)``, ``(*batch, M)`` initial log-scalings.
        order: ``"rows_first"`` or ``"cols_first"``.
        points: the default driver's sync points (increasing, last = ``max_iter``).
        absorb_every: absorption period of the scaling-domain path.
        use_log: run the log-domain path (never leaves range) instead.
        compiled: run each iteration through ``torch.compile``, which fuses the
            multiply-and-sum half-steps. Problems large enough for BLAS mat-vecs (the
            scaling path's ``use_matmul``) keep the eager iteration: it is a single pass over the
            kernel already, and the compiled mat-vec was 2.5-4x slower on CPU.

    Returns:
        ``(f, g, out_of_range)``: log-scalings ``(*batch, N)``, ``(*batch, M)`` and a 0-dim bool
        tensor, True when the default driver would have taken its log-domain fallback.
    """
    scaling = None if use_log else ScalingDomain(p, order)
    path = LogDomain(p, order) if scaling is None else scaling
    blas = getattr(path, "use_matmul", False)
    advance = _compiled_advance() if compiled and not blas else _advance
    active = ~p.empty
    state: Any = path.start(f0, g0)  # LogState or ScalingState, the path's own
    out_of_range = torch.zeros((), dtype=torch.bool, device=f0.device)
    done = 0
    for k in points:
        for _ in range(k - done):
            state = advance(path, active, state)
        if scaling is not None:
            out_of_range = out_of_range | (scaling.out_of_range(state) & active).any()
            if k == 1 or k % absorb_every == 0:
                state = scaling.absorb(state, active)
        done = k
    f, g = path.potentials(state)
    return f, g, out_of_range


# --------------------------------------------------------------------------- static buffers


def _compact_index(t: Tensor) -> tuple[slice, ...]:
    """Index that undoes ``expand``: every broadcast (stride 0, size > 1) dim becomes size 1."""
    return tuple(
        slice(0, 1) if stride == 0 and size > 1 else slice(None)
        for size, stride in zip(t.shape, t.stride(), strict=True)
    )


def _signature(t: Tensor) -> tuple:
    broadcast = tuple(i for i, s in enumerate(_compact_index(t)) if s.stop == 1)
    return (tuple(t.shape), t.dtype, broadcast)


class _GraphEntry:
    """Static input buffers, the function of them, and (on CUDA) its captured graph.

    ``fn(views) -> tuple of tensors`` is run once on a side stream (warm-up: allocations, lazy
    initialisation, compilation), then captured; each call copies the new inputs into the
    buffers, replays the graph and clones its outputs. With ``capture=False`` (CPU, tests) the
    call runs ``fn`` on the buffers eagerly instead: the same data path without a graph.
    """

    def __init__(self, fn: Callable, tensors: dict[str, Tensor], capture: bool) -> None:
        self.fn = fn
        self.index = {k: _compact_index(t) for k, t in tensors.items()}
        self.buffers = {k: t[self.index[k]].clone() for k, t in tensors.items()}
        self.views = {k: self.buffers[k].expand(t.shape) for k, t in tensors.items()}
        self.skip = 0  # calls left that go straight to the default driver
        self.graph = None
        if capture:
            device = next(iter(tensors.values())).device
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                fn(self.views)
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: other threads' CUDA calls (a DataLoader pinning memory) stay legal.
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.outputs = fn(self.views)

    def __call__(self, tensors: dict[str, Tensor]) -> tuple[Tensor, ...]:
        for k, t in tensors.items():
            self.buffers[k].copy_(t[self.index[k]])
        if self.graph is None:
            return self.fn(self.views)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)


class GraphCache:
    """Least-recently-used cache of :class:`_GraphEntry` by key (one per shape and setting).

    A key is captured on its second sighting: a shape seen once (a one-off call, the last short
    batch of an epoch) runs the fixed loop eagerly and pays nothing for a capture it would never
    replay.
    """

    def __init__(self, size: int = GRAPH_CACHE_SIZE, capture: bool = True) -> None:
        self.size = size
        self.capture = capture
        self.entries: OrderedDict[tuple, _GraphEntry] = OrderedDict()
        self.seen: OrderedDict[tuple, None] = OrderedDict()  # keys met once, not captured yet
        self.failed: set[tuple] = set()  # keys whose capture raised: they run eagerly
        self.hits = self.misses = self.fallbacks = 0

    def entry(self, key: tuple, fn: Callable, tensors: dict[str, Tensor]) -> _GraphEntry | None:
        """The key's entry (captured now on its second sighting), or ``None`` on its first."""
        found = self.entries.get(key)
        if found is not None:
            self.hits += 1
            self.entries.move_to_end(key)
            return found
        if key in self.failed:
            return None
        if key not in self.seen:
            self.seen[key] = None
            while len(self.seen) > 8 * self.size:
                self.seen.popitem(last=False)
            return None
        del self.seen[key]
        self.misses += 1
        while len(self.entries) >= self.size:
            self.entries.popitem(last=False)
        try:
            made = _GraphEntry(fn, tensors, self.capture)
        except RuntimeError as exc:  # e.g. an operation the CUDA driver refuses to capture
            self.failed.add(key)
            warnings.warn(
                f"ramlico.ot fast path: CUDA graph capture failed ({exc}); this problem shape "
                "runs the same fixed loop without a graph from now on (fast='off' skips it)",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        self.entries[key] = made
        return made

    def clear(self) -> None:
        self.entries.clear()
        self.seen.clear()
        self.failed.clear()
        self.hits = self.misses = self.fallbacks = 0


_CACHE = GraphCache()  # the only module state: captured graphs, freed by clear_fast_path_cache()


def clear_fast_path_cache() -> None:
    """Drop every captured CUDA graph (and its buffers) of the fast path."""
    _CACHE.clear()


def fast_path_cache_info() -> dict[str, int]:
    """``{"entries", "hits", "misses", "fallbacks"}`` of the fast path's graph cache."""
    c = _CACHE
    return {"entries": len(c.entries), "hits": c.hits, "misses": c.misses, "fallbacks": c.fallbacks}


def solve_fixed(
    p: Problem,
    f0: Tensor,
    g0: Tensor,
    mode: str,
    *,
    order: str,
    points: Sequence[int],
    absorb_every: int,
    use_log: bool,
    cache: GraphCache | None = None,
) -> tuple[Tensor, Tensor] | None:
    """The fast path: ``(f, g)`` after ``points[-1]`` iterations, or ``None`` to fall back.

    ``mode`` is ``"graph"`` or ``"compile"`` (see the module docstring). ``None`` means the
    scalings left the safe range (or recently did for this shape): the caller then runs the
    default driver, which gives the answer the fast path would have given had it been safe.
    One host synchronisation (the range flag) per call, none per iteration.
    """
    kw: dict[str, Any] = dict(
        order=order, points=tuple(points), absorb_every=absorb_every, use_log=use_log,
        compiled=mode == "compile",
    )  # fmt: skip
    on_cuda = f0.is_cuda
    cache = _CACHE if cache is None else cache
    entry = None
    if on_cuda or mode == "graph":  # CPU "compile": no graph, the compiled loop runs directly
        tensors = {name: getattr(p, name) for name in _PROBLEM_TENSORS} | {"f0": f0, "g0": g0}
        consts: dict[str, Any] = dict(
            kappa_a=p.kappa_a, kappa_b=p.kappa_b, batch_shape=p.batch_shape
        )
        tf32 = on_cuda and torch.backends.cuda.matmul.allow_tf32  # read by ScalingDomain
        key = (
            mode, str(f0.device), tuple(sorted(kw.items())), tuple(consts.items()), tf32,
            tuple((k, _signature(t)) for k, t in tensors.items()),
        )  # fmt: skip

        def run(views: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
            fields: dict[str, Any] = {k: views[k] for k in _PROBLEM_TENSORS}
            static = Problem(**fields, **consts)
            return fixed_iterations(static, views["f0"], views["g0"], **kw)

        with torch.cuda.device(f0.device) if on_cuda else contextlib.nullcontext():
            entry = cache.entry(key, run, tensors)
            if entry is not None and entry.skip > 0:
                entry.skip -= 1
                return None
            if entry is not None:
                f, g, bad = entry(tensors)
    if entry is None:  # first sighting of this shape, or CPU "compile"
        f, g, bad = fixed_iterations(p, f0, g0, **kw)
    if bool(bad):  # the one host sync
        cache.fallbacks += 1
        if entry is not None:
            entry.skip = SKIP_AFTER_FALLBACK
        return None
    return f, g
