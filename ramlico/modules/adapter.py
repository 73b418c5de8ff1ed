"""Residual bottleneck adapter on a frozen embedding (CLIP-Adapter, Gao et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualAdapter"]


class ResidualAdapter(nn.Module):
    """``y = (1 - alpha) x + alpha MLP(x)``, ``MLP = Linear(D, D r) -> act -> Linear(D r, D)``.

    Args:
        dim: embedding size D.
        reduction: hidden size as a fraction of D (at least 1 unit).
        alpha: residual mixing ratio in ``[0, 1]``; 0 returns the input unchanged.
        act_layer: activation class.
    """

    def __init__(
        self,
        dim: int,
        reduction: float = 0.25,
        alpha: float = 0.2,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        hidden = max(1, int(round(dim * reduction)))
        self.alpha = alpha
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., D) -> (..., D)``."""
        return (1.0 - self.alpha) * x + self.alpha * self.mlp(x)
