"""The batched entropic optimal-transport solver shared by RAM, LICO, LaZSL and OTFusion.

Balanced problem (one per leading index)::

    min_T  <T, C> - reg * H(T)     s.t.  T 1 = a,  T^T 1 = b,  T >= 0,   H(T) = -sum T log T

KL-relaxed (unbalanced) problem, ``reg_m = (rho_a, rho_b)`` (POT's ``reg_type="entropy"``)::

    min_T  <T, C> + reg * sum T (log T - 1) + rho_a KL(T 1 || a) + rho_b KL(T^T 1 || b)

The solution is ``T = exp(L + f 1^T + 1 g^T)`` with log-kernel ``L = -C / reg`` and log-scalings
``f, g`` found by alternating row and column steps (see :mod:`ramlico.ot.iterations`). Spec:
``docs/sinkhorn.md``; Cuturi (2013), Chizat et al. (2018), Schmitzer (2019).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from ramlico.ot.fast import FAST_MODES, resolve_fast_mode, solve_fixed
from ramlico.ot.iterations import LogDomain, LogState, ScalingDomain
from ramlico.ot.problem import Problem, prepare_problem
from ramlico.ot.result import OTResult, SinkhornWarning
from ramlico.ot.stopping import STOP_METRICS, STOP_RULES, stop_error, stop_mask

__all__ = ["sinkhorn"]

Tensor = torch.Tensor
_ORDERS = ("rows_first", "cols_first")
_METHODS = ("auto", "log")
_GRADS = ("none", "unrolled")
_OUTPUTS = ("plan", "potentials", "contract")
_SCALES = (None, "row_stochastic")


@dataclass
class _Carry:
    """Loop state: the path's state plus the per-problem bookkeeping."""

    state: Any  # the path's own: LogState (LogDomain) or ScalingState (ScalingDomain)
    f_prev: Tensor
    g_prev: Tensor
    active: Tensor
    n_iter: Tensor
    err: Tensor
    converged: Tensor


def _choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")


def _initial_potentials(
    p: Problem, init: tuple[Tensor | None, Tensor | None] | None
) -> tuple[Tensor, Tensor]:
    """``(f0, g0)``, full size: zeros or the caller's, ``-inf`` on zero mass (docs/sinkhorn.md)."""
    lk = p.log_kernel
    f0, g0 = init if init is not None else (None, None)
    full_f = (*p.batch_shape, lk.shape[-2])
    full_g = (*p.batch_shape, lk.shape[-1])
    f0 = lk.new_zeros(()) if f0 is None else f0.detach().to(lk.dtype)
    g0 = lk.new_zeros(()) if g0 is None else g0.detach().to(lk.dtype)
    neg = lk.new_full((), float("-inf"))
    f0 = torch.where(p.pos_a, f0, neg).expand(full_f).clone()
    g0 = torch.where(p.pos_b, g0, neg).expand(full_g).clone()
    return f0, g0


def _run(
    path: LogDomain | ScalingDomain, p: Problem, carry: _Carry, n_steps: int, opts: dict
) -> _Carry:
    """``n_steps`` iterations with per-problem freezing; no host synchronisation."""
    tol, rows_first = opts["tol"], opts["order"] == "rows_first"
    state, f_prev, g_prev = carry.state, carry.f_prev, carry.g_prev
    active, n_iter, err, converged = carry.active, carry.n_iter, carry.err, carry.converged
    for _ in range(n_steps):
        new: Any = path.iterate(state)  # the path's own state type
        state = path.where(active, new, state)
        n_iter = n_iter + active.long()
        if tol is None:
            continue
        f, g = path.potentials(new)
        e = stop_error(opts["stop_metric"], p, rows_first, f, g, f_prev, g_prev)
        err = torch.where(active, e, err)
        stop = stop_mask(opts["stop_rule"], e, tol, p.empty)
        converged = converged | (active & stop)
        keep = active.unsqueeze(-1)
        f_prev, g_prev = torch.where(keep, f, f_prev), torch.where(keep, g, g_prev)
        active = active & ~stop
    return _Carry(state, f_prev, g_prev, active, n_iter, err, converged)


def _boundaries(max_iter: int, check_every: int | None, absorb_every: int | None) -> list[int]:
    """Iterations after which the driver may sync: check points and absorption points."""
    points = {max_iter}
    if check_every:
        points.update(range(check_every, max_iter, check_every))
    if absorb_every:
        points.add(1)
        points.update(range(absorb_every, max_iter, absorb_every))
    return sorted(k for k in points if 0 < k <= max_iter)


def _merge_fallback(scaling: ScalingDomain, bad: Tensor, fast: _Carry, slow: _Carry) -> _Carry:
    """Take ``slow`` (log-domain) results for the ``bad`` problems, ``fast`` for the rest."""
    # Good problems keep their exact scaling state (bits included) until the next absorption.
    state = scaling.adopt(fast.state, bad, *slow.state)

    def pick(x: Tensor, y: Tensor) -> Tensor:
        return torch.where(bad.reshape(bad.shape + (1,) * (x.dim() - bad.dim())), y, x)

    return _Carry(
        state,
        pick(fast.f_prev, slow.f_prev),
        pick(fast.g_prev, slow.g_prev),
        pick(fast.active, slow.active),
        pick(fast.n_iter, slow.n_iter),
        pick(fast.err, slow.err),
        pick(fast.converged, slow.converged),
    )


def _uses_log(opts: dict) -> bool:
    """The pure log-domain path: asked for, needed for autograd, or no sync point to fall back."""
    return opts["method"] == "log" or opts["grad"] == "unrolled" or opts["check_every"] is None


def _solve(p: Problem, f0: Tensor, g0: Tensor, opts: dict) -> _Carry:
    """The outer loop: stretches of iterations between sync points, absorption and fallback."""
    max_iter, check_every = opts["max_iter"], opts["check_every"]
    use_log = _uses_log(opts)
    log_path = LogDomain(p, opts["order"])
    scaling = None if use_log else ScalingDomain(p, opts["order"])
    path = log_path if scaling is None else scaling
    batch = p.batch_shape
    dev = f0.device
    prev0 = f0 if opts["stop_metric"] != "scaling_l1_mean" else torch.zeros_like(f0)
    carry = _Carry(
        state=path.start(f0, g0),
        f_prev=prev0,
        g_prev=g0,
        active=(~p.empty).clone(),
        n_iter=torch.zeros(batch, dtype=torch.long, device=dev),
        err=torch.full(batch, float("inf"), dtype=f0.dtype, device=dev),
        converged=torch.zeros(batch, dtype=torch.bool, device=dev),
    )
    absorb_every = None if use_log else opts["absorb_every"]
    done, start_pot = 0, (f0, g0)
    for k in _boundaries(max_iter, check_every, absorb_every):
        before = carry
        carry = _run(path, p, carry, k - done, opts)
        any_active = carry.active.any() if opts["tol"] is not None else None
        if scaling is not None:
            bad = scaling.out_of_range(carry.state) & ~p.empty
            if opts["tol"] is not None and opts["stop_rule"] != "per_problem":
                # 'all'/'batch_mean' couple the problems: a fallback problem's error steers every
                # stop decision in this stretch, so the whole batch takes the log-domain stretch.
                bad = bad.any() & ~p.empty
            flags = torch.stack([bad.any(), carry.active.any()]).tolist()  # the only host sync
            any_active = flags[1]
            if flags[0]:
                slow_start = replace(before, state=log_path.start(*start_pot))
                slow = _run(log_path, p, slow_start, k - done, opts)
                carry = _merge_fallback(scaling, bad, carry, slow)
            if k == 1 or k % opts["absorb_every"] == 0:
                carry = replace(carry, state=scaling.absorb(carry.state, carry.active))
            start_pot = scaling.potentials(carry.state)
        done = k
        is_check = check_every is not None and (k % check_every == 0 or k == max_iter)
        if opts["tol"] is not None and is_check and not bool(any_active):
            break
    if scaling is not None:  # hand back plain log-scalings; the plan is formed from them
        carry = replace(carry, state=log_path.start(*scaling.potentials(carry.state)))
    return carry


def _solve_fast(p: Problem, f0: Tensor, g0: Tensor, opts: dict, mode: str) -> _Carry | None:
    """The fixed-iteration fast path (:mod:`ramlico.ot.fast`); ``None`` = use :func:`_solve`."""
    use_log = _uses_log(opts)
    absorb_every = opts["absorb_every"]
    points = _boundaries(opts["max_iter"], opts["check_every"], None if use_log else absorb_every)
    out = solve_fixed(
        p, f0, g0, mode, order=opts["order"], points=points, absorb_every=absorb_every,
        use_log=use_log,
    )  # fmt: skip
    if out is None:
        return None
    active = ~p.empty
    return _Carry(
        state=LogState(*out),
        f_prev=out[0],
        g_prev=out[1],
        active=active,
        n_iter=active.long() * opts["max_iter"],
        err=torch.full(p.batch_shape, float("inf"), dtype=f0.dtype, device=f0.device),
        converged=torch.zeros(p.batch_shape, dtype=torch.bool, device=f0.device),
    )


def sinkhorn(
    cost: Tensor | None,
    a: Tensor | None = None,
    b: Tensor | None = None,
    reg: float | Tensor | None = None,
    *,
    log_kernel: Tensor | None = None,
    log_a: Tensor | None = None,
    log_b: Tensor | None = None,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    reg_m: float | tuple[float, float] | None = None,
    order: str = "rows_first",
    init: tuple[Tensor | None, Tensor | None] | None = None,
    max_iter: int = 100,
    tol: float | None = None,
    stop_metric: str = "scaling_l1_mean",
    stop_rule: str = "per_problem",
    check_every: int | None = 10,
    absorb_every: int = 10,
    method: str = "auto",
    grad: str = "none",
    output: str = "plan",
    contract_with: Tensor | None = None,
    output_scale: str | None = None,
    mass_tol: float = 1e-4,
    warn: bool = True,
    validate: bool = True,
    fast: str = "auto",
) -> OTResult:
    """Solve a batch of entropic OT problems (balanced or KL-relaxed) with Sinkhorn iterations.

    Problem (per leading index)::

        min_T <T, C> - reg H(T)   s.t. T 1 = a, T^T 1 = b            (reg_m=None)
        min_T <T, C> + reg sum T(log T - 1) + rho_a KL(T1||a) + rho_b KL(T^T 1||b)   (reg_m)

    The computation always runs in fp32 (fp64 inputs stay fp64) with autocast disabled, so a call
    under bf16/fp16 autocast gives the fp32 answer.

    Args:
        cost: ``(*batch, N, M)`` cost ``C``, any leading dims; ``None`` with ``log_kernel``.
        a: ``(..., N)`` row marginal broadcastable to ``(*batch, N)``, ``>= 0`` (zeros allowed);
            ``None`` = uniform over real rows.
        b: ``(..., M)`` column marginal, likewise.
        reg: entropic regulariser ``eps > 0``: float or tensor broadcastable to ``*batch``.
        log_kernel: ``(*batch, N, M)`` alternative input ``L = -C / reg`` (``-inf`` = forbidden
            pair); e.g. OTFusion's ``F / eps`` or :func:`ramlico.ot.kcot_log_kernel`.
        log_a, log_b: log-marginals instead of ``a``/``b`` (``-inf`` = zero mass).
        row_mask, col_mask: ``(..., N)``/``(..., M)`` bool, False = padding (zero mass, and not
            counted in ``N_real``): many problems of different sizes in one call.
        reg_m: ``None`` balanced; a float or ``(rho_a, rho_b)`` for KL relaxation, ``inf`` = hard.
        order: ``"rows_first"`` (row step then column step: columns exact on exit) or
            ``"cols_first"`` (rows exact; POT's ``ot.sinkhorn``, OTFusion).
        init: ``(f0, g0)`` initial log-scalings (broadcastable; ``None`` = 0). Zero-mass entries
            always start at ``-inf``.
        max_iter: maximum number of iterations (one iteration = both half-steps).
        tol: stop tolerance on ``stop_metric``; ``None`` = exactly ``max_iter`` iterations.
        stop_metric: ``"scaling_l1_mean"`` | ``"potential_l1_sum"`` | ``"marginal_l2"`` |
            ``"plan_max_abs"`` (see :mod:`ramlico.ot.stopping`).
        stop_rule: ``"per_problem"`` | ``"all"`` | ``"batch_mean"``.
        check_every: iterations between the host checks of "everyone stopped" (results do not
            depend on it). ``None`` = never sync inside the loop (always ``max_iter`` iterations,
            graph-capturable; uses the log-domain path).
        absorb_every: absorption period of the scaling-domain path (also absorbs after
            iteration 1). Each absorption point syncs once to check the scalings' range.
        method: ``"auto"`` (stabilised scaling domain with log-domain fallback, several times
            faster) or ``"log"`` (pure log domain). Both give the log-domain iterates.
        grad: ``"none"`` (no autograd, detached outputs) or ``"unrolled"`` (autograd through the
            log-domain iterations). For the envelope gradient use
            :func:`ramlico.ot.entropic_ot_value`.
        output: ``"plan"``; ``"potentials"`` (no plan formed); ``"contract"`` (only
            ``sum_ij T_ij S_ij`` with ``S = contract_with``).
        contract_with: ``(*batch, N, M)``-broadcastable ``S`` for ``output="contract"``.
        output_scale: ``None`` or ``"row_stochastic"`` (``T_ij / a_i``; ``N T`` for uniform
            ``a``: OTFusion's ``Q``).
        mass_tol: relative tolerance of the balanced mass check ``sum a == sum b`` for fp32/fp64
            marginals. Marginals given in bf16/fp16 are allowed their dtype's round-off on top
            (``mass_tol + eps(a.dtype) + eps(b.dtype)``) and are rescaled in fp32 to equal
            masses, so e.g. a bf16 softmax is accepted.
        warn: warn (:class:`SinkhornWarning`) when ``tol`` was given and some problem did not
            reach it.
        validate: check the inputs (costs a few host syncs before the loop).
        fast: fixed-iteration fast path (:mod:`ramlico.ot.fast`). ``"auto"``: on CUDA, for
            ``tol=None``, ``grad="none"`` and up to 2**25 kernel entries, the loop is captured
            in a CUDA graph (cached per shape; one host sync per call); elsewhere the default
            driver. ``"graph"``: require the CUDA graph. ``"compile"``: a ``torch.compile``'d
            iteration (CPU or CUDA; equal up to rounding). ``"off"``: the default driver.
            Values leaving the safe range fall back to the default stabilised driver, so the
            plan is always the default path's.

    Returns:
        :class:`ramlico.ot.OTResult` with ``plan (*batch, N, M)``, ``f``, ``g``, ``n_iter``,
        ``converged``, ``err``, ``value`` and ``contraction``.

    Raises:
        ValueError: invalid inputs (negative or non-finite marginals, unequal masses in the
            balanced case, non-finite costs, ``reg <= 0``, unknown options).
        FloatingPointError: the result would contain NaN/Inf (e.g. a positive-mass row whose
            kernel entries are all ``-inf``).

    Example:
        >>> import torch
        >>> res = sinkhorn(torch.tensor([[0., 1.], [1., 0.]], dtype=torch.float64),
        ...                torch.tensor([.5, .5], dtype=torch.float64),
        ...                torch.tensor([.5, .5], dtype=torch.float64), 1.0, tol=1e-12)
        >>> round(res.plan[0, 0].item(), 6)  # 1 / (2 (1 + e^-1))
        0.365529
    """
    _choice("order", order, _ORDERS)
    _choice("stop_metric", stop_metric, STOP_METRICS)
    _choice("stop_rule", stop_rule, STOP_RULES)
    _choice("method", method, _METHODS)
    _choice("grad", grad, _GRADS)
    _choice("output", output, _OUTPUTS)
    _choice("output_scale", output_scale, _SCALES)
    _choice("fast", fast, FAST_MODES)
    if not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be an int >= 0, got {max_iter!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be > 0 or None (fixed iterations), got {tol!r}")
    for name, val in (("check_every", check_every), ("absorb_every", absorb_every)):
        if val is not None and (not isinstance(val, int) or val < 1):
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if output == "contract" and contract_with is None:
        raise ValueError('output="contract" needs contract_with=S of shape (*batch, N, M)')
    src = cost if cost is not None else log_kernel
    device_type = src.device.type if isinstance(src, Tensor) else "cpu"
    grad_ctx = torch.enable_grad() if grad == "unrolled" else torch.no_grad()
    # OT runs in fp32 (or fp64) whatever the caller's autocast state (docs/sinkhorn.md, "Numerics").
    with torch.autocast(device_type=device_type, enabled=False), grad_ctx:
        problem = prepare_problem(
            cost, a, b, reg, log_kernel=log_kernel, log_a=log_a, log_b=log_b,
            row_mask=row_mask, col_mask=col_mask, reg_m=reg_m, mass_tol=mass_tol,
            validate=validate,
        )  # fmt: skip
        f0, g0 = _initial_potentials(problem, init)
        opts = dict(
            order=order, tol=tol, stop_metric=stop_metric, stop_rule=stop_rule,
            max_iter=max_iter, check_every=check_every, absorb_every=absorb_every,
            method=method, grad=grad,
        )  # fmt: skip
        mode = resolve_fast_mode(
            fast, problem.log_kernel.device, tol=tol, grad=grad, max_iter=max_iter,
            entries=problem.log_kernel.numel(),
        )  # fmt: skip
        carry = _solve_fast(problem, f0, g0, opts, mode) if mode != "off" else None
        if carry is None:
            carry = _solve(problem, f0, g0, opts)
        return _finish(problem, carry, opts, output, contract_with, output_scale, warn)


def _finish(
    p: Problem,
    carry: _Carry,
    opts: dict,
    output: str,
    contract_with: Tensor | None,
    output_scale: str | None,
    warn: bool,
) -> OTResult:
    """Form the outputs, zero the empty problems, check finiteness and warn on non-convergence."""
    f, g = carry.state
    empty = p.empty
    neg = p.log_kernel.new_full((), float("-inf"))
    f = torch.where(empty.unsqueeze(-1), neg, f)
    g = torch.where(empty.unsqueeze(-1), neg, g)
    n_iter = torch.where(empty, torch.zeros_like(carry.n_iter), carry.n_iter)
    converged = carry.converged | empty
    err = torch.where(empty, torch.zeros_like(carry.err), carry.err)
    plan = value = contraction = None
    if output != "potentials":
        plan = torch.exp(p.log_kernel + f.unsqueeze(-1) + g.unsqueeze(-2))
        if not torch.isfinite(plan).all():
            raise FloatingPointError(
                "Sinkhorn produced a non-finite plan: some positive-mass row or column has no "
                "finite kernel entry towards the other side's positive-mass entries (all -inf in "
                "log_kernel), or the unbalanced relaxation diverged. Check log_kernel/cost, a, b."
            )
        r, c = plan.sum(-1), plan.sum(-2)
        zero = torch.zeros((), dtype=plan.dtype, device=plan.device)
        fr = torch.where(r > 0, r * f, zero).sum(-1)
        gc = torch.where(c > 0, c * g, zero).sum(-1)
        value = p.reg * (fr + gc)
        if output == "contract":
            assert contract_with is not None  # sinkhorn() requires it for output='contract'
            contraction = (plan * contract_with.to(plan.dtype)).sum((-2, -1))
            plan = None
        elif output_scale == "row_stochastic":
            a = p.log_a.exp().unsqueeze(-1)
            plan = torch.where(a > 0, plan / a, zero)
    if warn and opts["tol"] is not None and not bool(converged.all()):
        n_bad = int((~converged).sum())
        warnings.warn(
            SinkhornWarning(
                f"Sinkhorn: {n_bad} of {converged.numel()} problems did not reach "
                f"tol={opts['tol']:g} ({opts['stop_metric']}) within max_iter={opts['max_iter']} "
                f"iterations (largest error {err.max().item():.3g}). Raise max_iter or reg, "
                "loosen tol, or pass warn=False."
            ),
            stacklevel=3,
        )
    return OTResult(plan, f, g, n_iter, converged, err, value, contraction)
