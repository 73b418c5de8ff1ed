"""``SolverOptions``: the Sinkhorn settings of a method, as one dataclass built from config.

A method that solves OT takes a ``SolverOptions`` (Hydra ``_target_: ramlico.ot.SolverOptions``)
and passes it to the engine::

    res = sinkhorn(cost, a, b, opts.reg, **opts.solve_kwargs())

The fields are the engine's keyword arguments of the same names (see :func:`ramlico.ot.sinkhorn`);
they are checked here, when the config is built, not at the first training step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ramlico.ot.fast import FAST_MODES
from ramlico.ot.stopping import STOP_METRICS, STOP_RULES
from ramlico.utils.options import Options

__all__ = ["SolverOptions"]

_ORDERS = ("rows_first", "cols_first")
_METHODS = ("auto", "log")


@dataclass(frozen=True)
class SolverOptions(Options):
    """Settings of one Sinkhorn solve (defaults = the engine's).

    Attributes:
        reg: entropic regulariser ``eps > 0``.
        reg_m: ``None`` (balanced), or ``rho`` / ``(rho_a, rho_b)`` of the KL-relaxed problem.
        order: ``"rows_first"`` | ``"cols_first"``.
        max_iter: maximum number of iterations (``>= 1``).
        tol: stop tolerance on ``stop_metric``; ``None`` = exactly ``max_iter`` iterations.
        stop_metric: one of ``ramlico.ot.stopping.STOP_METRICS``.
        stop_rule: ``"per_problem"`` | ``"all"`` | ``"batch_mean"``.
        check_every: iterations between host checks of the stop rule; ``None`` = never sync.
        method: ``"auto"`` (stabilised scaling domain, log-domain fallback) | ``"log"`` (pure
            log domain: no data-dependent branch; what the ONNX export of RAM traces).
        fast: the fixed-iteration fast path, ``"auto"`` | ``"off"`` | ``"graph"`` |
            ``"compile"`` (``ramlico.ot.fast``; ``"auto"`` = a CUDA graph for ``tol=None``).

    Raises:
        ValueError: an out-of-range value or an unknown choice (named, with the allowed ones).
        TypeError: an unknown option (listing the allowed ones).
    """

    reg: float = 0.1
    reg_m: float | tuple[float, float] | None = None
    order: str = "rows_first"
    max_iter: int = 100
    tol: float | None = None
    stop_metric: str = "scaling_l1_mean"
    stop_rule: str = "per_problem"
    check_every: int | None = 10
    method: str = "auto"
    fast: str = "auto"

    def __post_init__(self) -> None:
        if not (isinstance(self.reg, (int, float)) and math.isfinite(self.reg) and self.reg > 0):
            raise ValueError(f"solver reg must be a finite number > 0, got {self.reg!r}")
        if isinstance(self.reg_m, list):  # a YAML list arrives as a list
            object.__setattr__(self, "reg_m", tuple(self.reg_m))
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ValueError(f"solver max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"solver tol must be > 0 or null (fixed iterations), got {self.tol}")
        if self.check_every is not None and self.check_every < 1:
            raise ValueError(
                f"solver check_every must be >= 1 or null (never sync), got {self.check_every}"
            )
        for name, allowed in (
            ("order", _ORDERS),
            ("stop_metric", STOP_METRICS),
            ("stop_rule", STOP_RULES),
            ("method", _METHODS),
            ("fast", FAST_MODES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"solver {name}={getattr(self, name)!r} is not supported; choose one of "
                    f"{allowed}"
                )

    def solve_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`ramlico.ot.sinkhorn` other than ``reg``."""
        return dict(
            reg_m=self.reg_m,
            order=self.order,
            max_iter=int(self.max_iter),
            tol=self.tol,
            stop_metric=self.stop_metric,
            stop_rule=self.stop_rule,
            check_every=self.check_every,
            method=self.method,
            fast=self.fast,
        )
