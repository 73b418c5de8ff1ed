"""Stopping metrics and rules of the Sinkhorn engine, evaluated on the device (no host sync).

Metrics (per problem, after iteration k; ``f`` are row log-scalings, ``e^f`` the row scalings):

* ``scaling_l1_mean``: ``(1 / N_real) * sum_i |e^{f_k,i} - e^{f_k-1,i}|`` with ``e^{f_0} := 1``
  (RAM 1e-3, LaZSL 1e-2). Zero-mass rows count, padded rows (``row_mask`` False) do not.
* ``potential_l1_sum``: ``sum_i |reg f_k,i - reg f_k-1,i|`` over finite entries (LICO 1e-3).
* ``marginal_l2``: l2 error of the marginal that the last half-step did not fix: the row sums
  ``||T 1 - a||`` with rows first, the column sums ``||T^T 1 - b||`` with columns first (POT).
* ``plan_max_abs``: ``max_ij |T_k,ij - T_k-1,ij|`` of the unscaled plan (OTFusion parity).

Rules: ``per_problem`` (each problem freezes once its own error < tol), ``all`` (everyone stops the
first time every error < tol), ``batch_mean`` (everyone stops when the mean error < tol).
"""

from __future__ import annotations

import torch

from ramlico.ot.problem import Problem

__all__ = ["STOP_METRICS", "STOP_RULES", "stop_error", "stop_mask"]

Tensor = torch.Tensor
STOP_METRICS = ("scaling_l1_mean", "potential_l1_sum", "marginal_l2", "plan_max_abs")
STOP_RULES = ("per_problem", "all", "batch_mean")


def _plan(p: Problem, f: Tensor, g: Tensor) -> Tensor:
    return torch.exp(p.log_kernel + f.unsqueeze(-1) + g.unsqueeze(-2))


def stop_error(
    metric: str,
    p: Problem,
    rows_first: bool,
    f: Tensor,
    g: Tensor,
    f_prev: Tensor,
    g_prev: Tensor,
) -> Tensor:
    """Per-problem error ``(*batch,)`` of iteration ``(f, g)`` against the previous one.

    NaN (e.g. ``inf - inf`` of overflowing scalings) is reported as ``inf``: never converged.
    """
    if metric == "scaling_l1_mean":
        diff = (f.exp() - f_prev.exp()).abs()
        diff = torch.where(p.row_real, diff, torch.zeros_like(diff))
        err = diff.sum(-1) / p.n_rows.clamp_min(1)
    elif metric == "potential_l1_sum":
        both = torch.isfinite(f) & torch.isfinite(f_prev)
        diff = torch.where(both, (f - f_prev).abs(), torch.zeros_like(f))
        err = p.reg * diff.sum(-1)
    elif metric == "marginal_l2":
        plan = _plan(p, f, g)
        if rows_first:
            gap = plan.sum(-1) - p.log_a.exp()
        else:
            gap = plan.sum(-2) - p.log_b.exp()
        err = torch.linalg.vector_norm(gap, dim=-1)
    elif metric == "plan_max_abs":
        err = (_plan(p, f, g) - _plan(p, f_prev, g_prev)).abs().amax(dim=(-2, -1))
    else:  # validated by the caller
        raise ValueError(f"unknown stop_metric {metric!r}; choose from {STOP_METRICS}")
    err = err.expand(p.batch_shape)
    return torch.where(torch.isnan(err), torch.full_like(err, float("inf")), err)


def stop_mask(rule: str, err: Tensor, tol: float, empty: Tensor) -> Tensor:
    """``(*batch,)`` bool: which problems stop after this iteration under ``rule``.

    Empty problems (no mass on one side) never hold the others back.
    """
    below = (err < tol) | empty
    if rule == "per_problem":
        return below
    if rule == "all":
        return below.all().expand_as(below)
    if rule == "batch_mean":
        real = ~empty
        mean = torch.where(real, err, torch.zeros_like(err)).sum() / real.sum().clamp_min(1)
        return (mean < tol).expand_as(below)
    raise ValueError(f"unknown stop_rule {rule!r}; choose from {STOP_RULES}")
