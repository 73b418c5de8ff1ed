"""``SinkhornOT``: an ``nn.Module`` that holds solver settings from config and calls the engine."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ramlico.ot.result import OTResult
from ramlico.ot.sinkhorn import sinkhorn

__all__ = ["SinkhornOT"]


class SinkhornOT(nn.Module):
    """Configured entropic OT solver (no parameters; built by Hydra from ``configs/model/ot``).

    Args:
        reg: entropic regulariser ``eps``.
        max_iter, tol, stop_metric, stop_rule, order, reg_m, check_every: see
            :func:`ramlico.ot.sinkhorn`.
        **options: any other keyword of :func:`ramlico.ot.sinkhorn` (e.g. ``warn=False``).

    ``forward(cost, a=None, b=None, **overrides)`` returns an :class:`OTResult`; ``overrides``
    replace the stored settings for one call (e.g. ``reg=0.1`` at evaluation).
    """

    def __init__(
        self,
        reg: float = 0.1,
        max_iter: int = 100,
        tol: float | None = None,
        stop_metric: str = "scaling_l1_mean",
        stop_rule: str = "per_problem",
        order: str = "rows_first",
        reg_m: float | tuple[float, float] | None = None,
        check_every: int | None = 10,
        **options: Any,
    ) -> None:
        super().__init__()
        if reg <= 0:
            raise ValueError(f"reg must be > 0, got {reg}; typical values 0.05 to 0.2")
        self.settings: dict[str, Any] = dict(
            reg=reg, max_iter=max_iter, tol=tol, stop_metric=stop_metric, stop_rule=stop_rule,
            order=order, reg_m=reg_m, check_every=check_every, **options,
        )  # fmt: skip

    def forward(
        self,
        cost: torch.Tensor | None,
        a: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        **overrides: Any,
    ) -> OTResult:
        kw = {**self.settings, **overrides}
        reg = kw.pop("reg") if cost is not None else kw.pop("reg", None)
        return sinkhorn(cost, a, b, reg, **kw)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())
