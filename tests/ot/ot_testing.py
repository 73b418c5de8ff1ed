"""Shared strategies and oracles for the tests of ``ramlico.ot`` (imported by tests/ot/test_*.py).

Random problems are drawn with hypothesis (shapes, ``reg``, seed) and filled from a seeded NumPy
generator, so every example is reproducible. The oracles are POT 0.9.7 solvers called once per
problem (docs/sinkhorn.md gives the correspondence of names, orders and inits).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import ot
import ot.batch
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# 25 examples per property keeps tests/ot well under a minute on 2 CPU cores; derandomize fixes the
# examples (the style guide asks for fixed seeds) and no example database is written.
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

F64 = torch.float64


@dataclass
class Case:
    """A batch of OT problems: ``cost (*batch, N, M)``, ``a (*batch|1, N)``, ``b (*batch|1, M)``."""

    cost: np.ndarray
    a: np.ndarray
    b: np.ndarray
    reg: float

    @property
    def batch(self) -> tuple[int, ...]:
        return self.cost.shape[:-2]

    def tensors(self, dtype: torch.dtype = F64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tuple(torch.tensor(x, dtype=dtype) for x in (self.cost, self.a, self.b))

    def problems(self):
        """Yield ``(index, C, a, b)`` for every problem, marginals broadcast to the batch."""
        a = np.broadcast_to(self.a, self.batch + self.a.shape[-1:])
        b = np.broadcast_to(self.b, self.batch + self.b.shape[-1:])
        for idx in itertools.product(*(range(s) for s in self.batch)):
            yield idx, self.cost[idx], np.ascontiguousarray(a[idx]), np.ascontiguousarray(b[idx])


def _marginal(rng: np.random.Generator, shape: tuple[int, ...], zero_frac: float) -> np.ndarray:
    """Positive weights in [0.05, 1] normalised to 1; ``zero_frac`` of them set to 0 (never all)."""
    w = rng.uniform(0.05, 1.0, shape)
    if zero_frac > 0:
        zero = rng.uniform(size=shape) < zero_frac
        keep = rng.integers(0, shape[-1], shape[:-1])  # one guaranteed positive entry per problem
        np.put_along_axis(zero, keep[..., None], False, axis=-1)
        w = np.where(zero, 0.0, w)
    return w / w.sum(-1, keepdims=True)


@st.composite
def cases(
    draw,
    max_size: int = 8,
    reg: tuple[float, float] = (0.05, 1.0),
    cost_scale: float = 1.0,
    zero_mass: bool = False,
) -> Case:
    """Random problems: batch dims 0-2 of size 1..3, N, M in 1..max_size, ``reg`` uniform in range.

    Marginals are either per problem or shared by the whole batch (broadcast), costs are uniform in
    ``[0, cost_scale]``; ``zero_mass`` puts zeros (about a third) into both marginals.
    """
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    n = draw(st.integers(1, max_size))
    m = draw(st.integers(1, max_size))
    eps = draw(st.floats(*reg))
    shared = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mshape = () if shared else batch
    frac = 0.35 if zero_mass else 0.0
    return Case(
        cost=rng.uniform(0.0, cost_scale, batch + (n, m)),
        a=_marginal(rng, mshape + (n,), frac),
        b=_marginal(rng, mshape + (m,), frac),
        reg=eps,
    )


# ----------------------------------------------------------------------------------- POT oracles


def per_problem(case: Case, solve) -> np.ndarray:
    """Apply ``solve(C, a, b) -> plan`` to each problem; stack to ``(*batch, N, M)``."""
    out = np.zeros(case.cost.shape)
    for idx, c, a, b in case.problems():
        out[idx] = solve(c, a, b)
    return out


def on_support(solve):
    """Wrap ``solve`` to run on the positive-mass sub-problem and zero-pad the plan back."""

    def wrapped(c, a, b):
        rows, cols = a > 0, b > 0
        plan = np.zeros(c.shape)
        plan[np.ix_(rows, cols)] = solve(c[np.ix_(rows, cols)], a[rows], b[cols])
        return plan

    return wrapped


def pot_converged(c, a, b, reg):
    """``ot.sinkhorn`` (Sinkhorn-Knopp) run to a column-marginal error of 1e-12.

    Knopp is 10x faster than ``sinkhorn_log`` on CPU and exact enough here: with ``reg >= 0.05``
    and costs in [0, 1] the kernel stays above e^-20, far from fp64 underflow.
    """
    return ot.sinkhorn(a, b, c, reg, stopThr=1e-12, numItermax=100_000, warn=False)


def pot_cols_first(c, a, b, reg, n_iter):
    """POT's log-domain Sinkhorn (columns then rows, zero init), exactly ``n_iter`` iterations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0) on zero-mass entries
        return ot.bregman.sinkhorn_log(a, b, c, reg, numItermax=n_iter, stopThr=0.0, warn=False)


def pot_rows_first(case: Case, n_iter: int) -> np.ndarray:
    """``ot.batch.bregman_log_projection_batch`` (rows then columns, zero init), one call."""
    flat_c = case.cost.reshape(-1, *case.cost.shape[-2:])
    a = np.broadcast_to(case.a, case.batch + case.a.shape[-1:]).reshape(-1, flat_c.shape[1])
    b = np.broadcast_to(case.b, case.batch + case.b.shape[-1:]).reshape(-1, flat_c.shape[2])
    res = ot.batch.bregman_log_projection_batch(
        -flat_c / case.reg,
        np.ascontiguousarray(a),
        np.ascontiguousarray(b),
        max_iter=n_iter,
        tol=0.0,
    )
    return np.asarray(res["T"]).reshape(case.cost.shape)


def pot_unbalanced(c, a, b, reg, reg_m, n_iter):
    """``ot.unbalanced.sinkhorn_unbalanced``, ``reg_type="entropy"`` (ours; not POT's default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "matrix c is overwritten by the one matrix"
        return ot.unbalanced.sinkhorn_unbalanced(
            a, b, c, reg, reg_m, reg_type="entropy", numItermax=n_iter, stopThr=0.0
        )


def pot_rows_first_one(c, a, b, reg, n_iter):
    """The same POT batch solver on a single problem (leading batch dim of 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = ot.batch.bregman_log_projection_batch(
            -c[None] / reg, a[None], b[None], max_iter=n_iter, tol=0.0
        )
    return np.asarray(res["T"])[0]
