"""LICO's mapping MLP ``h_psi[a, b]``: prompt features (text width) -> feature-map space (d')."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MappingMLP"]

Tensor = torch.Tensor


class MappingMLP(nn.Module):
    """Two-layer MLP applied to the last dimension::

        h(t) = W2 ReLU(Dropout(W1 t + b1)) + b2,    W1: (hidden, in_dim), W2: (out_dim, hidden)

    Dropout-then-ReLU as in the LICO reference code (equivalent to ReLU-then-dropout). In LICO,
    ``in_dim`` is the CLIP text width (512), ``hidden = 512`` and ``out_dim = d'``, the spatial
    size of the image encoder's last feature map, read from a dummy forward pass (docs/lico.md).

    Args:
        in_dim: input width.
        out_dim: output width ``d'``.
        hidden_dim: hidden width ``a``.
        dropout: dropout probability (reference: 0.5).
        act_layer: activation class.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 512,
        dropout: float = 0.5,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.drop = nn.Dropout(dropout)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_dim)`` -> ``(..., out_dim)``."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(
                f"MappingMLP expects (..., {self.in_dim}) inputs, got {tuple(x.shape)}"
            )
        return self.fc2(self.act(self.drop(self.fc1(x))))
