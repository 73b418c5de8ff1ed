"""Result container and warning class of the Sinkhorn engine."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["OTResult", "SinkhornWarning"]


class SinkhornWarning(RuntimeWarning):
    """Warned when a Sinkhorn solve stops at ``max_iter`` without reaching ``tol``.

    It is its own class so that callers can filter exactly this warning
    (``warnings.simplefilter("ignore", SinkhornWarning)``) without hiding others.
    """


@dataclass
class OTResult:
    """What :func:`ramlico.ot.sinkhorn` returns.

    Shapes use ``*batch`` for the broadcast leading dimensions of the inputs and ``N``/``M`` for
    rows/columns. Every tensor is fp32 (fp64 when the inputs were fp64) and detached unless the
    solve ran with ``grad="unrolled"``.

    Attributes:
        plan: ``(*batch, N, M)`` transport plan ``T = exp(L + f 1^T + 1 g^T)``, rescaled when
            ``output_scale`` was set; ``None`` when ``output`` was ``"potentials"`` or
            ``"contract"``.
        f: ``(*batch, N)`` row log-scalings (dimensionless; the dual potential in cost units is
            ``reg * f``). ``-inf`` on zero-mass and padded rows.
        g: ``(*batch, M)`` column log-scalings, ``-inf`` on zero-mass and padded columns.
        n_iter: ``(*batch,)`` int64, iterations applied to each problem (0 for empty problems).
        converged: ``(*batch,)`` bool, the problem's error fell below ``tol`` (always ``False``
            with ``tol=None``, except for empty problems, which are trivially converged).
        err: ``(*batch,)`` last value of the stopping metric (``inf`` when none was computed).
        value: ``(*batch,)`` entropic transport cost of the returned plan,
            ``<T, C> - reg * H(T)`` with ``H(T) = -sum T log T``; computed from the potentials as
            ``reg * (<T 1, f> + <T^T 1, g>)`` so it also exists for log-kernel inputs. ``None``
            unless a plan was formed.
        contraction: ``(*batch,)`` ``sum_ij T_ij S_ij`` for ``output="contract"``, else ``None``.
    """

    plan: torch.Tensor | None
    f: torch.Tensor
    g: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor
    err: torch.Tensor
    value: torch.Tensor | None = None
    contraction: torch.Tensor | None = None

    @property
    def potentials(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f, g)``: the row and column log-scalings."""
        return self.f, self.g

    def require(self, name: str) -> torch.Tensor:
        """The optional field ``name`` (``"plan"``, ``"value"``, ``"contraction"``), or a
        ``ValueError`` saying which ``output`` of :func:`ramlico.ot.sinkhorn` forms it."""
        value = getattr(self, name)
        if value is None:
            needs = {"plan": "'plan'", "value": "'plan'", "contraction": "'contract'"}[name]
            raise ValueError(f"this OTResult has no {name}: solve with output={needs}")
        return value
