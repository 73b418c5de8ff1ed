"""Entropic OT value whose gradient with respect to the cost is the optimal plan (envelope)."""

from __future__ import annotations

from typing import Any

import torch

from ramlico.ot.sinkhorn import sinkhorn

__all__ = ["entropic_ot_value"]

Tensor = torch.Tensor


def entropic_ot_value(
    cost: Tensor,
    reg: float | Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    **sinkhorn_kwargs: Any,
) -> Tensor:
    """``W_reg(C) = min_{T in Pi(a,b)} <T, C> - reg H(T)`` with ``dW/dC = T*`` (no unrolling).

    Why the gradient is exact: ``W`` is a minimum over a set that does not depend on ``C`` of a
    function linear in ``C``. By the envelope (Danskin) theorem its gradient is the partial
    derivative of the objective at the minimiser, ``d<T, C>/dC = T*``; the minimiser's own change
    does not contribute because the objective is stationary there. So this function solves for
    ``T*`` without autograd and returns ``<sg(T*), C> + reg * sum sg(T*) log sg(T*)``, whose
    autograd gradient is ``sg(T*)`` for ``C`` and ``-H(T*)`` for ``reg`` -- both the envelope
    gradients. Contrast POT's ``sinkhorn2`` (``<T*, C>`` only), whose gradient is *not* ``T*``.
    It is exact at convergence; with a loose ``tol`` it is as accurate as the marginals.

    Args:
        cost: ``(*batch, N, M)``, may require grad.
        reg: entropic regulariser (float or tensor broadcastable to ``*batch``).
        a, b: marginals as in :func:`ramlico.ot.sinkhorn` (never receive gradients).
        **sinkhorn_kwargs: forwarded to :func:`ramlico.ot.sinkhorn` (e.g. ``tol``, ``max_iter``).
    Returns:
        ``(*batch,)`` value in the dtype of the solve (fp32 or fp64).
    """
    if sinkhorn_kwargs.get("grad", "none") != "none" or "output" in sinkhorn_kwargs:
        raise ValueError("entropic_ot_value always solves with grad='none' and output='plan'")
    reg_det = reg.detach() if isinstance(reg, Tensor) else reg
    res = sinkhorn(cost.detach(), a, b, reg_det, **sinkhorn_kwargs)
    plan = res.require("plan")
    c = cost.to(plan.dtype)
    reg_t = torch.as_tensor(reg, dtype=plan.dtype, device=plan.device)
    plogp = torch.where(plan > 0, plan * torch.log(plan), torch.zeros_like(plan)).sum((-2, -1))
    return (plan * c).sum((-2, -1)) + reg_t * plogp
