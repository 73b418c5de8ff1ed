"""Validation and normalisation of Sinkhorn inputs into one :class:`Problem`.

Everything the iterations need is computed here once: the log-kernel ``L = -cost / reg``, the
log-marginals with ``-inf`` on zero-mass and padded entries, the relaxation exponents of the
unbalanced problem, the number of real rows per problem and which problems are empty. Every check
raises a ``ValueError`` that names the argument, the bad value and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

import torch

__all__ = ["Problem", "prepare_problem"]

Tensor = torch.Tensor
_NEG_INF = float("-inf")
_LOW_PRECISION = (torch.bfloat16, torch.float16)


@dataclass
class Problem:
    """A batch of entropic OT problems in log form (``*batch`` leading dims, N rows, M cols).

    Marginal-shaped tensors keep the caller's broadcastable shape (e.g. LaZSL's ``(B, 1, N)``) so
    that nothing of size ``batch x N`` is materialised needlessly.
    """

    log_kernel: Tensor  # (*batch, N, M), fp32/fp64, never NaN or +inf
    log_a: Tensor  # (..., N) broadcastable to (*batch, N); -inf on zero mass / padding
    log_b: Tensor  # (..., M)
    row_real: Tensor  # (..., N) bool: False on padded rows (row_mask)
    kappa_a: float  # rho_a / (rho_a + reg); 1.0 = hard constraint
    kappa_b: float
    reg: Tensor  # (*batch) or () : entropic regulariser (1.0 when only a log-kernel was given)
    batch_shape: torch.Size
    n_rows: Tensor  # (*batch) number of real rows (float, for mean metrics)
    empty: Tensor  # (*batch) bool: no positive-mass row or no positive-mass column

    pos_a: Tensor = None  # type: ignore[assignment]  # (..., N) bool: rows that carry mass
    pos_b: Tensor = None  # type: ignore[assignment]  # (..., M) bool: columns that carry mass

    def __post_init__(self) -> None:
        self.pos_a = self.log_a > _NEG_INF
        self.pos_b = self.log_b > _NEG_INF

    @property
    def balanced(self) -> bool:
        return self.kappa_a == 1.0 and self.kappa_b == 1.0


def _work_dtype(*tensors: Tensor | None) -> torch.dtype:
    """fp64 if any floating input is fp64, else fp32 (bf16/fp16 are upcast: OT runs in fp32)."""
    dtypes = [t.dtype for t in tensors if isinstance(t, Tensor) and t.is_floating_point()]
    return torch.float64 if torch.float64 in dtypes else torch.float32


def _as_tensor(x: Tensor | float, like: Tensor, name: str) -> Tensor:
    if isinstance(x, Tensor):
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
        return x.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(float(x), device=like.device, dtype=like.dtype)


def _check_mask(mask: Tensor | None, name: str, size: int, device: torch.device) -> Tensor:
    if mask is None:
        return torch.ones(size, dtype=torch.bool, device=device)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (False = padding), got dtype {mask.dtype}")
    if mask.shape[-1:] != (size,):
        raise ValueError(f"{name} has shape {tuple(mask.shape)}; its last dim must be {size}")
    return mask.to(device)


def _log_marginal(
    values: Tensor | None,
    logs: Tensor | None,
    real: Tensor,
    name: str,
    size: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """Log-marginal ``(..., size)`` with ``-inf`` on zero mass and padding; uniform when absent."""
    if values is not None and logs is not None:
        raise ValueError(f"pass either {name} or log_{name}, not both")
    if values is not None:
        v = values.to(device=device, dtype=dtype)
        if v.shape[-1:] != (size,):
            raise ValueError(
                f"{name} has shape {tuple(v.shape)}; its last dim must match the cost ({size})"
            )
        if not torch.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or Inf; marginals must be finite and >= 0")
        if (v < 0).any():
            raise ValueError(
                f"{name} has negative entries (min {v.min().item():.3g}); marginals must be >= 0"
            )
        with torch.no_grad():
            logv = torch.log(v)
    elif logs is not None:
        logv = logs.to(device=device, dtype=dtype)
        if logv.shape[-1:] != (size,):
            raise ValueError(f"log_{name} has shape {tuple(logv.shape)}; last dim must be {size}")
        if torch.isnan(logv).any() or (logv == float("inf")).any():
            raise ValueError(f"log_{name} contains NaN or +inf; use -inf for zero mass")
    else:
        n_real = real.sum(-1, keepdim=True).clamp_min(1).to(dtype)
        logv = (-torch.log(n_real)).expand(real.shape)
    return torch.where(real, logv, torch.full((), _NEG_INF, dtype=dtype, device=device))


def _kappa(rho: float, reg: Tensor, name: str) -> float:
    if rho <= 0 or math.isnan(rho):
        raise ValueError(f"{name} must be > 0 (inf = hard constraint), got {rho}")
    if math.isinf(rho):
        return 1.0
    if reg.numel() != 1:
        raise ValueError(
            "unbalanced OT (reg_m) needs a scalar reg; got a per-problem reg tensor of shape "
            f"{tuple(reg.shape)}. Solve groups with equal reg separately."
        )
    return rho / (rho + float(reg))


def _relaxation(
    reg_m: float | tuple[float, float] | list[float] | None, reg: Tensor
) -> tuple[float, float]:
    if reg_m is None:
        return 1.0, 1.0
    if isinstance(reg_m, (tuple, list)):
        if len(reg_m) != 2:
            raise ValueError(f"reg_m must be a float or a pair (rho_a, rho_b), got {reg_m!r}")
        rho_a, rho_b = float(reg_m[0]), float(reg_m[1])
    else:
        rho_a = rho_b = float(reg_m)
    return _kappa(rho_a, reg, "reg_m (rows)"), _kappa(rho_b, reg, "reg_m (columns)")


def _is_low_precision(x: Tensor | None) -> TypeGuard[Tensor]:
    return isinstance(x, Tensor) and x.dtype in _LOW_PRECISION


def _round_off(values: Tensor | None, logs: Tensor | None) -> float:
    """Bound on the relative mass error that a bf16/fp16 marginal carries (0 for fp32/fp64).

    With ``eps`` the dtype's machine epsilon, rounding a weight to the dtype changes it by at most
    ``eps / 2`` relative, and a mass normalised in that dtype is off by another ``eps / 2``: in
    all ``eps``. A log-marginal entry is off by ``eps / 2 * |log a_i|`` absolute, i.e. the weight
    by that much relative: ``eps * (1 + max |log a|)`` covers it.
    """
    if _is_low_precision(values):
        return torch.finfo(values.dtype).eps
    if _is_low_precision(logs):
        finite = logs[torch.isfinite(logs)]
        top = float(finite.abs().max()) if finite.numel() else 0.0
        return torch.finfo(logs.dtype).eps * (1.0 + top)
    return 0.0


def _check_mass(
    log_a: Tensor,
    log_b: Tensor,
    mass_tol: float,
    round_off: tuple[float, float],
    dtypes: tuple[str, ...],
) -> None:
    """Balanced OT needs equal total mass on both sides of every non-empty problem.

    The allowed relative gap is ``mass_tol`` plus the round-off of bf16/fp16 marginals
    (:func:`_round_off`); fp32/fp64 marginals get ``mass_tol`` alone.
    """
    mass_a = torch.logsumexp(log_a, -1).exp()
    mass_b = torch.logsumexp(log_b, -1).exp()
    mass_a, mass_b = torch.broadcast_tensors(mass_a, mass_b)
    rel = (mass_a - mass_b).abs() / torch.maximum(mass_a, mass_b).clamp_min(1e-30)
    both = (mass_a > 0) & (mass_b > 0)  # empty problems are allowed: they get a zero plan
    rel = torch.where(both & torch.isfinite(rel), rel, torch.zeros_like(rel))
    extra = sum(round_off)
    if (rel > mass_tol + extra).any():
        worst = int(rel.argmax())
        allowed = f"mass_tol={mass_tol:g}"
        if extra:
            sides = zip("ab", dtypes, round_off, strict=True)
            names = " and ".join(f"{side} ({dtype})" for side, dtype, r in sides if r)
            allowed += f" + {extra:.3g} for the round-off of {names}"
        raise ValueError(
            f"balanced OT needs sum(a) == sum(b) for every problem; problem {worst} (flat index) "
            f"has sum(a)={mass_a.flatten()[worst].item():.6g}, "
            f"sum(b)={mass_b.flatten()[worst].item():.6g} (relative gap "
            f"{rel.max().item():.3g} > {allowed}). Normalise a and b, or pass "
            "reg_m=... for KL-relaxed (unbalanced) OT."
        )


def _equalise_masses(
    log_a: Tensor, log_b: Tensor, low_a: bool, low_b: bool
) -> tuple[Tensor, Tensor]:
    """Rescale the bf16/fp16 side(s) in the working dtype so both masses agree per problem.

    One low-precision side takes the other side's mass; two take the mean of both. The change is
    within the dtype's own round-off (checked before), so nothing the caller meant is lost, and
    the balanced iterations then meet both marginals. Empty problems are left alone.
    """
    mass_a = torch.logsumexp(log_a, -1, keepdim=True)
    mass_b = torch.logsumexp(log_b, -1, keepdim=True)
    if low_a and low_b:
        target = torch.logaddexp(mass_a, mass_b) - math.log(2.0)
    else:
        target = mass_b if low_a else mass_a

    def shift(logs: Tensor, mass: Tensor) -> Tensor:
        d = target - mass
        return logs + torch.where(torch.isfinite(d), d, torch.zeros_like(d))

    return (shift(log_a, mass_a) if low_a else log_a), (shift(log_b, mass_b) if low_b else log_b)


def _balanced_marginals(
    la: Tensor, lb: Tensor, given_a: tuple, given_b: tuple, mass_tol: float, validate: bool
) -> tuple[Tensor, Tensor]:
    """Check the masses (``validate``) and equalise the round-off of bf16/fp16 marginals.

    ``given_a = (a, log_a)`` as passed by the caller (either may be ``None``), likewise ``b``.
    """
    low_a = any(_is_low_precision(x) for x in given_a)
    low_b = any(_is_low_precision(x) for x in given_b)
    if validate:
        round_off = (_round_off(*given_a), _round_off(*given_b))
        names = tuple(
            str(x.dtype).removeprefix("torch.") if x is not None else "uniform"
            for x in (next((t for t in g if t is not None), None) for g in (given_a, given_b))
        )
        _check_mass(la, lb, mass_tol, round_off, names)
    if low_a or low_b:
        la, lb = _equalise_masses(la, lb, low_a, low_b)
    return la, lb


def prepare_problem(
    cost: Tensor | None,
    a: Tensor | None,
    b: Tensor | None,
    reg: Tensor | float | None,
    *,
    log_kernel: Tensor | None = None,
    log_a: Tensor | None = None,
    log_b: Tensor | None = None,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    reg_m: float | tuple[float, float] | None = None,
    mass_tol: float = 1e-4,
    validate: bool = True,
) -> Problem:
    """Check the inputs of :func:`ramlico.ot.sinkhorn` and build a :class:`Problem` (fp32/fp64)."""
    if (cost is None) == (log_kernel is None):
        raise ValueError("pass exactly one of cost (with reg) or log_kernel (= -cost / reg)")
    source = cost if cost is not None else log_kernel
    src_name = "cost" if cost is not None else "log_kernel"
    if not isinstance(source, Tensor) or source.dim() < 2:
        raise ValueError(f"{src_name} must be a tensor of shape (*batch, N, M)")
    if not source.is_floating_point():
        raise TypeError(f"{src_name} must be a floating tensor, got {source.dtype}")
    dtype = _work_dtype(source, a, b, log_a, log_b, reg if isinstance(reg, Tensor) else None)
    device = source.device
    source = source.to(dtype)
    n, m = source.shape[-2:]
    if cost is not None and reg is None:
        raise ValueError("reg (the entropic regulariser, eps) is required with cost; e.g. reg=0.1")
    reg_t = _as_tensor(1.0 if reg is None else reg, source, "reg")
    if validate and (not torch.isfinite(reg_t).all() or (reg_t <= 0).any()):
        raise ValueError(
            f"reg must be finite and > 0, got {reg_t.flatten()[:4].tolist()}; use reg >= 1e-3 "
            "(the solver works in the log domain, small reg is safe)"
        )
    if validate:
        if cost is not None and not torch.isfinite(source).all():
            bad = (~torch.isfinite(source)).sum().item()
            raise ValueError(
                f"cost has {bad} non-finite entries (NaN/Inf); costs must be finite. For forbidden "
                "pairs pass log_kernel with -inf there instead."
            )
        if cost is None and (torch.isnan(source).any() or (source == float("inf")).any()):
            raise ValueError(
                "log_kernel contains NaN or +inf; only -inf (forbidden pair) is allowed"
            )
    log_k = -source / reg_t[..., None, None] if cost is not None else source
    row_real = _check_mask(row_mask, "row_mask", n, device)
    col_real = _check_mask(col_mask, "col_mask", m, device)
    la = _log_marginal(a, log_a, row_real, "a", n, dtype, device)
    lb = _log_marginal(b, log_b, col_real, "b", m, dtype, device)
    try:
        batch_shape = torch.broadcast_shapes(
            log_k.shape[:-2], la.shape[:-1], lb.shape[:-1], reg_t.shape
        )
    except RuntimeError as exc:
        raise ValueError(
            f"shapes do not broadcast: {src_name} {tuple(log_k.shape)}, a {tuple(la.shape)}, "
            f"b {tuple(lb.shape)}, reg {tuple(reg_t.shape)}; expected (*batch, N, M), (*batch, N), "
            "(*batch, M) up to broadcasting"
        ) from exc
    log_k = log_k.expand(*batch_shape, n, m)
    if reg_m is not None and reg is None:
        raise ValueError(
            "unbalanced OT (reg_m) with a log_kernel needs reg as well: the relaxation exponent "
            "is rho / (rho + reg); pass the reg that log_kernel was divided by"
        )
    kappa_a, kappa_b = _relaxation(reg_m, reg_t)
    if kappa_a == 1.0 and kappa_b == 1.0:  # balanced: both sides must carry the same mass
        la, lb = _balanced_marginals(la, lb, (a, log_a), (b, log_b), mass_tol, validate)
    pos_a_any = (la > _NEG_INF).any(-1).expand(batch_shape)
    pos_b_any = (lb > _NEG_INF).any(-1).expand(batch_shape)
    n_rows = row_real.sum(-1).to(dtype).expand(batch_shape)
    problem = Problem(
        log_kernel=log_k,
        log_a=la,
        log_b=lb,
        row_real=row_real,
        kappa_a=kappa_a,
        kappa_b=kappa_b,
        reg=reg_t,
        batch_shape=batch_shape,
        n_rows=n_rows,
        empty=~(pos_a_any & pos_b_any),
    )
    return problem
