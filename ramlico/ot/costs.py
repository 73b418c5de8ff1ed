"""Cost builders used by the methods: cosine, squared Euclidean and RAM's KCOT transform."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cosine_cost", "squared_euclidean_cost", "kcot_cost", "kcot_log_kernel"]

Tensor = torch.Tensor


def cosine_cost(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """``C_ij = 1 - cos(x_i, y_j)``, values in ``[0, 2]``.

    Args:
        x: ``(*batch, N, D)``; y: ``(*batch, M, D)`` (broadcastable leading dims).
    Returns:
        ``(*batch, N, M)`` cost.
    """
    return 1.0 - F.normalize(x, dim=-1, eps=eps) @ F.normalize(y, dim=-1, eps=eps).transpose(-1, -2)


def squared_euclidean_cost(x: Tensor, y: Tensor, normalize: bool = False) -> Tensor:
    """``C_ij = ||x_i - y_j||^2``; with ``normalize=True`` on unit vectors, ``2 - 2 x_i^T y_j``.

    LICO uses the normalised form (values in ``[0, 4]``).

    Args:
        x: ``(*batch, N, D)``; y: ``(*batch, M, D)``.
    Returns:
        ``(*batch, N, M)`` cost, clamped at 0 against round-off.
    """
    if normalize:
        return (
            2.0 - 2.0 * F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(-1, -2)
        ).clamp_min(0)
    xx = (x * x).sum(-1, keepdim=True)
    yy = (y * y).sum(-1).unsqueeze(-2)
    return (xx + yy - 2.0 * x @ y.transpose(-1, -2)).clamp_min(0)


def kcot_cost(cost: Tensor, teacher_plan: Tensor, reg: float, beta: float) -> tuple[Tensor, float]:
    """KCOT as plain entropic OT: ``(C0 - beta log P, reg + beta)`` (RAM; docs/sinkhorn.md).

    ``min_{T in Pi(u,v)} <T, C0> - reg H(T) + beta KL(T || P)`` equals the balanced problem with
    cost ``C0 - beta log P`` and regulariser ``reg + beta``, because on ``Pi(u, v)`` the masses of
    ``T`` and ``P`` are fixed, so ``beta KL(T||P) = -beta H(T) - beta <T, log P> + const``.
    Scaling ``P`` by any ``kappa > 0`` leaves the plan unchanged.

    Args:
        cost: ``(*batch, N, M)`` ``C0``; teacher_plan: ``(*batch, N, M)`` ``P > 0``.
    Returns:
        ``(transformed cost, effective reg)``; entries with ``P = 0`` get ``+inf`` cost, so pass
        :func:`kcot_log_kernel` to the solver instead when ``P`` has zeros.
    """
    if beta < 0 or reg <= 0:
        raise ValueError(f"KCOT needs reg > 0 and beta >= 0, got reg={reg}, beta={beta}")
    return cost - beta * torch.log(teacher_plan), reg + beta


def kcot_log_kernel(cost: Tensor, teacher_plan: Tensor, reg: float, beta: float) -> Tensor:
    """``L = -(C0 - beta log P) / (reg + beta)``; ``-inf`` where ``P = 0`` (forbidden pair).

    Args/Returns as :func:`kcot_cost`; pass the result as ``sinkhorn(None, a, b,
    log_kernel=L)``.
    """
    c, reg_eff = kcot_cost(cost, teacher_plan, reg, beta)
    return -c / reg_eff
