"""LICO's two language-image consistency losses: manifold matching (MM) and optimal transport (OT).

Both are plain functions of tensors; :class:`ManifoldMatchingLoss` is a thin shell that owns the
learnable temperature ``tau``. Notes: ``docs/lico.md`` ("Manifold matching", "OT loss"); LICO
(Lei et al., NeurIPS 2023) eq. 1-2 (MM) and eq. 3-8 (OT).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.ot import SolverOptions, sinkhorn, squared_euclidean_cost

__all__ = [
    "LICO_SOLVER",
    "ManifoldMatchingLoss",
    "clamped_euclidean_distance",
    "manifold_matching_loss",
    "ot_alignment_loss",
    "plan_entropy",
]

Tensor = torch.Tensor
DIST_SQ_FLOOR = 1e-4  # [C]: sqrt(max(d^2, 1e-4)) keeps sqrt differentiable on the diagonal
TAU_FLOOR = 1e-2  # tau clamped >= 0.01 in the forward pass
OT_GRADS = ("envelope", "unrolled")
#: LICO's Sinkhorn settings (docs/lico.md): eps 0.1, at most 100 iterations, and, when ``tol`` is
#: set, LICO's own stop rule (the batch mean of the row potential's L1 change, all problems).
LICO_SOLVER = SolverOptions(
    reg=0.1, max_iter=100, tol=None, stop_metric="potential_l1_sum", stop_rule="batch_mean"
)


def clamped_euclidean_distance(x: Tensor) -> Tensor:
    """Pairwise Euclidean distances of the rows of ``x`` with a floor on the squared distance.

    ``D_ij = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i^T x_j, 1e-4))``, so the diagonal is 0.01 (not 0)
    and the square root has a finite gradient everywhere (LICO reference code).

    Args:
        x: ``(B, D)``.
    Returns:
        ``(B, B)`` distances.
    """
    sq = (x * x).sum(-1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * x @ x.transpose(0, 1)
    return d2.clamp_min(DIST_SQ_FLOOR).sqrt()


def manifold_matching_loss(
    image_repr: Tensor, text_repr: Tensor, tau: Tensor | float, sign: int = -1
) -> Tensor:
    """Manifold-matching loss: KL between the text and image neighbourhood distributions.

    Both sides are L2-normalised; with ``D`` from :func:`clamped_euclidean_distance`::

        A^F_ij = softmax_j(sign * D(f_i, f_j) / tau)        (image side, B x B)
        A^G_ij = softmax_j(sign * D(g_i, g_j) / tau)        (text side,  B x B)
        L_MM   = 1/B sum_i KL(A^G_i || A^F_i) = 1/B sum_ij A^G_ij (log A^G_ij - log A^F_ij)

    Args:
        image_repr: ``(B, C)`` image representations (pooled features by default).
        text_repr: ``(B, D)`` text representations of each image's class (any width).
        tau: positive temperature (scalar tensor or float), shared by both sides.
        sign: ``-1`` (paper, default) or ``+1`` (reference-code parity).
    Returns:
        scalar loss (0 when both sides have the same distance matrix).
    Raises:
        ValueError: mismatched batch sizes or a ``sign`` other than +-1.

    Reference: LICO eq. 1-2.
    """
    if image_repr.dim() != 2 or text_repr.dim() != 2 or len(image_repr) != len(text_repr):
        raise ValueError(
            f"image_repr (B, C) and text_repr (B, D) must share B; got {tuple(image_repr.shape)} "
            f"and {tuple(text_repr.shape)}"
        )
    if sign not in (-1, 1):
        raise ValueError(f"sign must be -1 (paper) or +1 (reference code), got {sign}")
    d_img = clamped_euclidean_distance(F.normalize(image_repr.float(), dim=-1))
    d_txt = clamped_euclidean_distance(F.normalize(text_repr.float(), dim=-1))
    log_a_img = F.log_softmax(sign * d_img / tau, dim=-1)
    log_a_txt = F.log_softmax(sign * d_txt / tau, dim=-1)
    return F.kl_div(log_a_img, log_a_txt, reduction="batchmean", log_target=True)


def plan_entropy(plan: Tensor) -> Tensor:
    """``(*batch,)`` entropy ``-sum T log T`` of each plan (``0 log 0 = 0``); logs collapse."""
    logp = torch.where(plan > 0, plan.log(), torch.zeros_like(plan))
    return -(plan * logp).sum((-2, -1))


def ot_alignment_loss(
    feature_maps: Tensor,
    prompt_maps: Tensor,
    solver: SolverOptions = LICO_SOLVER,
    grad: str = "envelope",
) -> tuple[Tensor, Tensor]:
    """LICO's OT loss between the feature-map channels and the mapped prompt features.

    Per image ``i``, rows of the unit-normalised ``F_i (N, d')`` and ``G_i (M, d')`` are points::

        C_i[n, m] = || f_n/|f_n| - g_m/|g_m| ||^2          in [0, 4] (all-zero channel: 1)
        T*_i      = argmin_{T in Pi(1/N, 1/M)} <T, C_i> - reg H(T)     (log-domain Sinkhorn)
        L_OT      = 1/B sum_i <T*_i, C_i>

    ``grad="envelope"`` (default): ``T*`` is solved without autograd and detached, ``C`` keeps
    its graph, so ``dL/dC_i = T*_i / B`` -- the envelope-theorem gradient of the entropic OT
    value (the reference code put ``C`` under ``no_grad`` too, a zero-gradient
    bug). ``grad="unrolled"`` differentiates through the Sinkhorn iterations instead.

    Args:
        feature_maps: ``(B, N, d')`` image feature maps (N channels over d' positions).
        prompt_maps: ``(B, M, d')`` mapped prompt features of each image's class.
        solver: the Sinkhorn settings (:data:`LICO_SOLVER`: ``reg`` 0.1 as in LICO's code;
            ``max_iter`` 100, all of them when ``tol`` is None; with ``tol`` (reference 1e-3)
            LICO's own stop rule: stop all problems of the batch once the batch mean of
            ``sum_n |f_new,n - f_old,n|`` (row potential in cost units) is below ``tol``).
            Missing ``tol`` is not reported (no warning per training step).
        grad: ``"envelope"`` or ``"unrolled"``.
    Returns:
        ``(loss, plan)``: scalar loss and the detached ``(B, N, M)`` plans (fp32).
    Raises:
        ValueError: mismatched shapes or an unknown ``grad``.

    Reference: LICO eq. 3-8; docs/lico.md, "OT loss".
    """
    if feature_maps.dim() != 3 or prompt_maps.dim() != 3:
        raise ValueError(
            f"feature_maps (B, N, d') and prompt_maps (B, M, d') must be 3-D; got "
            f"{tuple(feature_maps.shape)} and {tuple(prompt_maps.shape)}"
        )
    b_f, _, d_f = feature_maps.shape
    if b_f != prompt_maps.shape[0] or d_f != prompt_maps.shape[2]:
        raise ValueError(
            f"feature_maps {tuple(feature_maps.shape)} and prompt_maps {tuple(prompt_maps.shape)} "
            "must share B and d' (the mapping MLP's output size must equal the map size)"
        )
    if grad not in OT_GRADS:
        raise ValueError(f"grad={grad!r} is not supported; choose one of {OT_GRADS}")
    # OT in fp32 even under autocast (the engine also forces it; docs/sinkhorn.md, "Numerics").
    with torch.autocast(device_type=feature_maps.device.type, enabled=False):
        f_hat = F.normalize(feature_maps.float(), dim=-1)
        g_hat = F.normalize(prompt_maps.float(), dim=-1)
        cost = squared_euclidean_cost(f_hat, g_hat)  # (B, N, M), differentiable
        opts = dict(solver.solve_kwargs(), warn=False)
        if grad == "envelope":
            plan = sinkhorn(cost.detach(), None, None, solver.reg, **opts).require("plan")
        else:
            res = sinkhorn(cost, None, None, solver.reg, grad="unrolled", **opts)
            plan = res.require("plan")
        loss = (plan * cost).sum((-2, -1)).mean()
    return loss, plan.detach()


class ManifoldMatchingLoss(nn.Module):
    """:func:`manifold_matching_loss` with its learnable temperature.

    Args:
        tau_init: initial temperature (reference code: ``log(1/0.07) = 2.659``).
        parametrization: ``"raw"`` (the parameter is ``tau`` itself, clamped >= 0.01 in the
            forward, reference code) or ``"exp"`` (``tau = exp(s)``).
        sign: ``-1`` (paper) or ``+1`` (reference-code parity).
    """

    def __init__(
        self, tau_init: float = math.log(1 / 0.07), parametrization: str = "raw", sign: int = -1
    ) -> None:
        super().__init__()
        if parametrization not in ("raw", "exp"):
            raise ValueError(f"parametrization must be 'raw' or 'exp', got {parametrization!r}")
        if tau_init <= 0:
            raise ValueError(f"tau_init must be > 0, got {tau_init}")
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 (paper) or +1 (reference code), got {sign}")
        self.parametrization = parametrization
        self.sign = sign
        init = tau_init if parametrization == "raw" else math.log(tau_init)
        self.tau_param = nn.Parameter(torch.tensor(float(init)))

    @property
    def tau(self) -> Tensor:
        """The temperature used in the forward pass (scalar tensor, >= 0.01 for ``raw``)."""
        if self.parametrization == "exp":
            return self.tau_param.exp()
        return self.tau_param.clamp_min(TAU_FLOOR)

    def forward(self, image_repr: Tensor, text_repr: Tensor) -> Tensor:
        """``(B, C)``, ``(B, D)`` -> scalar MM loss."""
        return manifold_matching_loss(image_repr, text_repr, self.tau, self.sign)
