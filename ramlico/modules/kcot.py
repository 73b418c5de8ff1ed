"""Knowledge-constrained OT (KCOT): RAM's region-to-label matching (docs/ram.md, "KCOT").

Everything here runs without gradient. With unit region features ``z`` ``(B, N, D)`` and unit label
features ``t`` ``(C, D)``, ``S = z t^T`` ``(B, N, C)``:

* cost            ``C0 = 1 - softmax_C(lambda * S)``        (lambda = 100, CLIP's scale)
* region marginal ``u = softmax_N(max_C S / tau_u)``                      (label-presence detection)
* label marginal  ``v = 1 / C``
* teacher plan    ``P = softmax_N(sharpen * softmax_C(lambda * S_teacher))`` with the columns of the
  labels absent from the image set to the batch-wide minimum of ``P`` (``fill="batch_min"``) or to
  the image's own minimum (``fill="sample_min"``)
* plan            ``T = argmin_{T in Pi(u, v)} <T, C0> - eps H(T) + beta KL(T || P)``,
  solved as plain entropic OT with cost ``C0 - beta log P`` and regulariser ``eps + beta``
  (training), or cost ``C0`` and regulariser ``eps`` (inference, no teacher).

The solver is the shared engine (:func:`ramlico.ot.sinkhorn`) with the reference's stopping rule:
rows first, at most 100 iterations, stop when every image's mean absolute change of the row scaling
is below 1e-3 (checked on the device, synced every ``check_every`` iterations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ramlico.ot import SolverOptions, kcot_log_kernel, sinkhorn
from ramlico.utils.options import Options

__all__ = [
    "KCOTConfig",
    "kcot_plan",
    "label_presence_marginal",
    "region_label_cost",
    "teacher_plan",
]

Tensor = torch.Tensor
_FILLS = ("batch_min", "sample_min")


def _check_finite(name: str, x: Tensor) -> None:
    if not torch.isfinite(x).all():
        raise FloatingPointError(
            f"KCOT: {name} contains NaN or Inf (non-finite features reached the matching; check "
            "the learning rate / temperatures and the input images)"
        )


def region_label_cost(similarity: Tensor, scale: float = 100.0) -> Tensor:
    """``C0 = 1 - softmax over labels of (scale * S)``: ``(B, N, C)`` -> ``(B, N, C)`` in [0, 1]."""
    return 1.0 - torch.softmax(scale * similarity, dim=-1)


def label_presence_marginal(similarity: Tensor, tau: float = 0.1) -> Tensor:
    """``u = softmax over regions of (max over labels of S / tau)``: ``(B, N, C)`` -> ``(B, N)``."""
    return torch.softmax(similarity.amax(dim=-1) / tau, dim=-1)


def teacher_plan(
    similarity: Tensor,
    targets: Tensor,
    *,
    scale: float = 100.0,
    sharpen: float = 20.0,
    fill: str = "batch_min",
) -> Tensor:
    """Teacher transport prior ``P`` ``(B, N, C)`` from the frozen teacher's similarities.

    Args:
        similarity: ``(B, N, C)`` teacher cosine similarities ``S^T``.
        targets: ``(B, C)`` 0/1 ground truth.
        scale: teacher logit scale (100).
        sharpen: factor of the softmax over regions (20).
        fill: ``"batch_min"`` (reference: the minimum of the whole batch tensor before masking) or
            ``"sample_min"`` (each image's own minimum; batch-independent).

    Returns:
        ``P`` with every label column summing to 1 over regions for present labels, and absent
        labels' columns filled with the minimum.
    """
    q = torch.softmax(scale * similarity, dim=-1)
    p = torch.softmax(sharpen * q, dim=1)
    if fill == "batch_min":
        low = p.amin().expand(p.shape[0], 1, 1)
    elif fill == "sample_min":
        low = p.amin(dim=(1, 2), keepdim=True)
    else:
        raise ValueError(f"teacher fill must be 'batch_min' or 'sample_min', got {fill!r}")
    absent = (targets == 0).unsqueeze(1)  # (B, 1, C)
    return torch.where(absent, low.to(p.dtype), p)


def _reference_solver() -> SolverOptions:
    """RAM's reference stopping: rows first, <= 100 iterations, every image below 1e-3."""
    return SolverOptions(reg=0.1, max_iter=100, tol=1e-3, stop_rule="all")


@dataclass(frozen=True)
class KCOTConfig(Options):
    """Hyper-parameters of KCOT (defaults = the RAM reference); built by ``model.kcot._target_``.

    Attributes:
        teacher: use the teacher plan in training (TKT); ``False`` = plain OT on ``C0``.
        beta: weight of the teacher KL term (``OT_REGSC``); 0 or no teacher = plain OT.
        scale: logit scale inside the cost and the teacher (CLIP's 100).
        tau_u: temperature of the label-presence marginal; ``None`` = uniform ``u`` (plain OT).
        sharpen: teacher softmax factor over regions.
        fill: teacher masking, ``"batch_min"`` | ``"sample_min"``.
        solver: the Sinkhorn settings (:class:`ramlico.ot.SolverOptions`); ``solver.reg`` is the
            entropic regulariser ``eps`` (``OT_REG``), the stopping fields give reference parity.
    """

    teacher: bool = True
    beta: float = 0.05
    scale: float = 100.0
    tau_u: float | None = 0.1
    sharpen: float = 20.0
    fill: str = "batch_min"
    solver: SolverOptions = field(default_factory=_reference_solver)

    def __post_init__(self) -> None:
        if self.fill not in _FILLS:
            raise ValueError(f"kcot fill={self.fill!r} is not supported; choose one of {_FILLS}")
        if self.beta < 0:
            raise ValueError(f"kcot beta must be >= 0 (0 = no teacher term), got {self.beta}")
        if self.tau_u is not None and not self.tau_u > 0:
            raise ValueError(f"kcot tau_u must be > 0 or null (uniform marginal), got {self.tau_u}")
        object.__setattr__(self, "solver", SolverOptions.build(self.solver))

    @property
    def eps(self) -> float:
        """The entropic regulariser ``eps`` of the paper (``solver.reg``)."""
        return self.solver.reg


@torch.no_grad()
def kcot_plan(
    similarity: Tensor,
    config: KCOTConfig = KCOTConfig(),
    teacher: Tensor | None = None,
) -> Tensor:
    """Transport plan ``T`` ``(B, N, C)`` between regions and labels (no gradient, fp32).

    Args:
        similarity: ``(B, N, C)`` student cosine similarities ``S`` (detached here).
        config: :class:`KCOTConfig`.
        teacher: ``(B, N, C)`` teacher plan ``P`` (training) or ``None`` (inference).

    Returns:
        ``T`` with columns summing to ``1/C`` and rows to ``u`` (up to the stopping tolerance).

    Raises:
        FloatingPointError: a non-finite similarity or teacher plan arrives.
    """
    s = similarity.detach().float()
    _check_finite("the region-label similarity", s)
    batch, regions, labels = s.shape
    cost = region_label_cost(s, config.scale)
    if config.tau_u is None:
        u = s.new_full((batch, regions), 1.0 / regions)
    else:
        u = label_presence_marginal(s, config.tau_u)
    v = s.new_full((batch, labels), 1.0 / labels)
    # the reference stops at max_iter silently: no convergence warning
    solve = dict(config.solver.solve_kwargs(), warn=False)
    if teacher is not None and config.beta > 0:
        p = teacher.detach().float()
        _check_finite("the teacher plan", p)
        log_k = kcot_log_kernel(cost, p, config.eps, config.beta)
        res = sinkhorn(None, u, v, log_kernel=log_k, **solve)
    else:
        res = sinkhorn(cost, u, v, config.eps, **solve)
    return res.require("plan")
