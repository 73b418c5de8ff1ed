"""The two ways of running Sinkhorn iterations on a :class:`~ramlico.ot.problem.Problem`.

Both compute the same iterates (they differ only by floating-point rounding):

* :class:`LogDomain` updates the log-scalings directly,
  ``f_i <- kappa_a * (log a_i - LSE_j(L_ij + g_j))`` and
  ``g_j <- kappa_b * (log b_j - LSE_i(L_ij + f_i))``. It never over- or underflows, needs one
  ``exp`` per kernel entry and half-step, and is differentiable (``grad="unrolled"``).
* :class:`ScalingDomain` (stabilised Sinkhorn, Schmitzer 2019) keeps absorbed potentials
  ``f_abs, g_abs`` and a stabilised kernel ``K = exp(L + f_abs 1^T + 1 g_abs^T)`` and iterates the
  classical scaling vectors ``u <- (a / K v)^kappa_a``, ``v <- (b / K^T u)^kappa_b`` (with a
  factor ``exp((kappa - 1) f_abs)`` in the unbalanced case). The true log-scalings are
  ``f = f_abs + log u``, ``g = g_abs + log v``. A half-step is a multiply-and-sum, several times
  cheaper than a log-sum-exp. The driver absorbs ``u, v`` into the potentials at fixed iterations
  (rebuilding ``K``) and hands any problem whose scalings leave ``[1/big, big]`` back to
  :class:`LogDomain` for that stretch of iterations, so the result is always the log-domain one.

Zero-mass rows/columns (``log a = -inf``) keep ``-inf`` potentials, exactly-zero scalings and
zero plan entries in both paths; they never enter a reduction.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ramlico.ot.problem import Problem

__all__ = ["LogDomain", "ScalingDomain", "LogState", "ScalingState"]

Tensor = torch.Tensor
_NEG_INF = float("-inf")
_MATMUL_MIN_ENTRIES = 16384  # per-problem N * M from which BLAS mat-vecs beat multiply-and-sum


def _neg_inf_like(x: Tensor) -> Tensor:
    return torch.full((), _NEG_INF, dtype=x.dtype, device=x.device)


class LogState(NamedTuple):
    f: Tensor  # (*batch, N)
    g: Tensor  # (*batch, M)


class ScalingState(NamedTuple):
    f_abs: Tensor  # (*batch, N) absorbed row log-scalings
    g_abs: Tensor  # (*batch, M)
    u: Tensor  # (*batch, N) row scaling relative to f_abs (0 on zero-mass rows)
    v: Tensor  # (*batch, M)
    kernel: Tensor  # (*batch, N, M) exp(L + f_abs + g_abs)


class LogDomain:
    """Log-domain Sinkhorn half-steps (see module docstring)."""

    def __init__(self, problem: Problem, order: str) -> None:
        self.p = problem
        self.rows_first = order == "rows_first"

    def _rows(self, g: Tensor) -> Tensor:
        p = self.p
        lse = torch.logsumexp(p.log_kernel + g.unsqueeze(-2), dim=-1)
        f = p.log_a - lse
        if p.kappa_a != 1.0:
            f = p.kappa_a * f
        return torch.where(p.pos_a, f, _neg_inf_like(f))

    def _cols(self, f: Tensor) -> Tensor:
        p = self.p
        lse = torch.logsumexp(p.log_kernel + f.unsqueeze(-1), dim=-2)
        g = p.log_b - lse
        if p.kappa_b != 1.0:
            g = p.kappa_b * g
        return torch.where(p.pos_b, g, _neg_inf_like(g))

    def start(self, f0: Tensor, g0: Tensor) -> LogState:
        return LogState(f0, g0)

    def iterate(self, s: LogState) -> LogState:
        if self.rows_first:
            f = self._rows(s.g)
            return LogState(f, self._cols(f))
        g = self._cols(s.f)
        return LogState(self._rows(g), g)

    def potentials(self, s: LogState) -> tuple[Tensor, Tensor]:
        return s.f, s.g

    def where(self, mask: Tensor, new: LogState, old: LogState) -> LogState:
        m = mask.unsqueeze(-1)
        return LogState(torch.where(m, new.f, old.f), torch.where(m, new.g, old.g))


class ScalingDomain:
    """Stabilised scaling-domain Sinkhorn half-steps with absorption (see module docstring).

    Args:
        problem: the prepared problem.
        order: ``"rows_first"`` or ``"cols_first"``.
    """

    def __init__(self, problem: Problem, order: str) -> None:
        self.p = problem
        self.rows_first = order == "rows_first"
        finfo = torch.finfo(problem.log_kernel.dtype)
        # Scalings stay in [1/big, big]: then a kernel entry lost to underflow (< tiny) would carry
        # at most tiny * big^2 ~ 1e-19 (fp32) of plan mass, and u * v * K never overflows.
        self.big = finfo.max**0.25
        self.a = problem.log_a.exp()
        self.b = problem.log_b.exp()
        n, m = problem.log_kernel.shape[-2:]
        # Mat-vecs: BLAS for large problems (measured up to 8x faster on CPU at 10,000 x 1000),
        # multiply-and-sum for small ones (faster there). Never a TF32 matmul (docs/sinkhorn.md).
        tf32 = problem.log_kernel.is_cuda and torch.backends.cuda.matmul.allow_tf32
        self.use_matmul = n * m >= _MATMUL_MIN_ENTRIES and not tf32

    def _kv(self, kernel: Tensor, v: Tensor) -> Tensor:
        """``(K v)_i = sum_j K_ij v_j``: ``(*batch, N)``."""
        if self.use_matmul:
            return torch.matmul(kernel, v.unsqueeze(-1)).squeeze(-1)
        return (kernel * v.unsqueeze(-2)).sum(-1)

    def _ktu(self, kernel: Tensor, u: Tensor) -> Tensor:
        """``(K^T u)_j = sum_i K_ij u_i``: ``(*batch, M)``."""
        if self.use_matmul:
            return torch.matmul(u.unsqueeze(-2), kernel).squeeze(-2)
        return (kernel * u.unsqueeze(-1)).sum(-2)

    def _kernel(self, f_abs: Tensor, g_abs: Tensor) -> Tensor:
        return torch.exp(self.p.log_kernel + f_abs.unsqueeze(-1) + g_abs.unsqueeze(-2))

    def _rows(self, kernel: Tensor, v: Tensor, f_abs: Tensor) -> Tensor:
        p = self.p
        ratio = self.a / self._kv(kernel, v)
        if p.kappa_a != 1.0:
            ratio = ratio.pow(p.kappa_a) * torch.exp((p.kappa_a - 1.0) * f_abs)
        return torch.where(p.pos_a, ratio, torch.zeros((), dtype=ratio.dtype, device=ratio.device))

    def _cols(self, kernel: Tensor, u: Tensor, g_abs: Tensor) -> Tensor:
        p = self.p
        ratio = self.b / self._ktu(kernel, u)
        if p.kappa_b != 1.0:
            ratio = ratio.pow(p.kappa_b) * torch.exp((p.kappa_b - 1.0) * g_abs)
        return torch.where(p.pos_b, ratio, torch.zeros((), dtype=ratio.dtype, device=ratio.device))

    def start(self, f0: Tensor, g0: Tensor) -> ScalingState:
        """Absorb the initial potentials, shifted so the first half-step cannot underflow.

        With rows first, ``f_abs_i = -max_j (L_ij + g0_j)`` makes every kernel row peak at 1; the
        row step then recomputes ``u`` from scratch, so the shift changes nothing but rounding.
        """
        lk = self.p.log_kernel
        if self.rows_first:
            peak = torch.amax(lk + g0.unsqueeze(-2), dim=-1)
            f_abs = torch.where(torch.isfinite(peak) & torch.isfinite(f0), -peak, f0)
            g_abs = g0
        else:
            peak = torch.amax(lk + f0.unsqueeze(-1), dim=-2)
            g_abs = torch.where(torch.isfinite(peak) & torch.isfinite(g0), -peak, g0)
            f_abs = f0
        u, v = self._unit_scalings(f0, g0)
        return ScalingState(f_abs, g_abs, u, v, self._kernel(f_abs, g_abs))

    def _unit_scalings(self, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """``u = v = 1`` on positive mass, 0 on zero mass, at the shapes of ``f`` and ``g``."""
        u = torch.where(self.p.pos_a, 1.0, 0.0).to(f.dtype).expand_as(f)
        v = torch.where(self.p.pos_b, 1.0, 0.0).to(g.dtype).expand_as(g)
        return u, v

    def iterate(self, s: ScalingState) -> ScalingState:
        if self.rows_first:
            u = self._rows(s.kernel, s.v, s.f_abs)
            v = self._cols(s.kernel, u, s.g_abs)
        else:
            v = self._cols(s.kernel, s.u, s.g_abs)
            u = self._rows(s.kernel, v, s.f_abs)
        return s._replace(u=u, v=v)

    def potentials(self, s: ScalingState) -> tuple[Tensor, Tensor]:
        return s.f_abs + torch.log(s.u), s.g_abs + torch.log(s.v)

    def where(self, mask: Tensor, new: ScalingState, old: ScalingState) -> ScalingState:
        m = mask.unsqueeze(-1)
        return new._replace(u=torch.where(m, new.u, old.u), v=torch.where(m, new.v, old.v))

    def out_of_range(self, s: ScalingState) -> Tensor:
        """``(*batch,)`` bool: a positive-mass scaling is non-finite or outside ``[1/big, big]``."""

        def bad(x: Tensor, pos: Tensor) -> Tensor:
            ok = (x >= 1.0 / self.big) & (x <= self.big)  # False for NaN and inf
            return (pos & ~ok).any(-1)

        return bad(s.u, self.p.pos_a) | bad(s.v, self.p.pos_b)

    def absorb(self, s: ScalingState, active: Tensor) -> ScalingState:
        """Move ``log u, log v`` of active problems into the potentials and rebuild the kernel.

        Frozen problems keep their bits: their ``f_abs, g_abs`` are unchanged, so the rebuilt
        kernel rows are identical.
        """
        f, g = self.potentials(s)
        m = active.unsqueeze(-1)
        f_abs = torch.where(m, f, s.f_abs)
        g_abs = torch.where(m, g, s.g_abs)
        u = torch.where(m & self.p.pos_a, torch.ones_like(s.u), s.u)
        v = torch.where(m & self.p.pos_b, torch.ones_like(s.v), s.v)
        return ScalingState(f_abs, g_abs, u, v, self._kernel(f_abs, g_abs))

    def adopt(self, s: ScalingState, mask: Tensor, f: Tensor, g: Tensor) -> ScalingState:
        """Problems in ``mask`` take the log-scalings ``(f, g)`` (absorbed, ``u = v = 1``); the
        others keep their state bit for bit. The kernel is rebuilt once."""
        m = mask.unsqueeze(-1)
        u1, v1 = self._unit_scalings(f, g)
        f_abs, g_abs = torch.where(m, f, s.f_abs), torch.where(m, g, s.g_abs)
        u, v = torch.where(m, u1, s.u), torch.where(m, v1, s.v)
        return ScalingState(f_abs, g_abs, u, v, self._kernel(f_abs, g_abs))
