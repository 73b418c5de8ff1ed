"""Text-guided spatial selection (TSS), RAM's trainable local adapter (docs/ram.md, "Streams").

Input: a block output ``x`` ``(B, 1 + N, W)`` (class token + an ``s x s`` patch grid, ``N = s*s``)
and label features ``t`` ``(C, D)`` (un-normalised, with gradient). Hidden width = ``D``::

    X           = patches as a map                                   (B, W, s, s)
    S1          = GELU(BN1(Conv1x1_{W->D}(X)))                        (B, D, s, s)
    S2          = GELU(BN2(Conv3x3_{W->D}(X)))                        (B, D, s, s)
    s_i        += softmax_C(LN_q,i(s_i) LN_kv(t)^T / sqrt(D)) LN_kv(t) (tokens, i = 1, 2)
    a, m        = channel mean and max of [S1; S2]                    (B, 1, s, s) each
    Mk          = sigmoid(Conv3x3_{2->2}([a; m]))                     (B, 2, s, s), in [0, 1]
    G           = S1 * Mk_0 + S2 * Mk_1                               (B, D, s, s)
    TSS(x, t)   = [x_cls ; Conv1x1_{D->W}(G) as tokens]               (B, 1 + N, W)

All convolutions are bias-free; GELU is the exact (erf) one; parameters use PyTorch's default
initialisation (the output conv is not zero-initialised). With ``W = 768, D = 512`` the module has
4,330,532 parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TextGuidedSpatialSelection"]

Tensor = torch.Tensor


class TextGuidedSpatialSelection(nn.Module):
    """TSS adapter of one block.

    Args:
        width: token width ``W`` of the vision tower.
        text_dim: label feature width ``D`` (also the hidden width).
        kernel_size: kernel of the 2->2 mask convolution (3 in RAM).
    """

    def __init__(self, width: int, text_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, text_dim, 1, bias=False)
        self.conv3 = nn.Conv2d(width, text_dim, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(text_dim)
        self.bn3 = nn.BatchNorm2d(text_dim)
        self.ln_q1 = nn.LayerNorm(text_dim)
        self.ln_q3 = nn.LayerNorm(text_dim)
        self.ln_kv = nn.LayerNorm(text_dim)
        self.mask_conv = nn.Conv2d(2, 2, kernel_size, padding=kernel_size // 2, bias=False)
        self.out = nn.Conv2d(text_dim, width, 1, bias=False)
        #: last spatial masks ``(B, 2, s, s)`` (detached), for inspection.
        self.last_masks: Tensor | None = None

    @staticmethod
    def _cross_attend(s: Tensor, ln_q: nn.LayerNorm, kv: Tensor) -> Tensor:
        """``s (B, N, D)`` += softmax_C(LN_q(s) kv^T / sqrt(D)) kv, with ``kv (C, D)``."""
        attn = torch.softmax(ln_q(s) @ kv.t() / math.sqrt(kv.shape[-1]), dim=-1)
        return s + attn @ kv

    def forward(self, x: Tensor, text: Tensor) -> Tensor:
        """``x (B, 1 + N, W)``, ``text (C, D)`` -> ``(B, 1 + N, W)``."""
        batch, tokens, width = x.shape
        side = math.isqrt(tokens - 1)
        if side * side != tokens - 1:
            raise ValueError(f"TSS expects 1 + s*s tokens, got {tokens}")
        cls, patches = x[:, :1], x[:, 1:]
        grid = patches.transpose(1, 2).reshape(batch, width, side, side)
        kv = self.ln_kv(text.to(x.dtype))
        streams = []
        for conv, bn, ln_q in (
            (self.conv1, self.bn1, self.ln_q1),
            (self.conv3, self.bn3, self.ln_q3),
        ):
            s = F.gelu(bn(conv(grid)))  # (B, D, s, s)
            tok = self._cross_attend(s.flatten(2).transpose(1, 2), ln_q, kv)  # (B, N, D)
            streams.append(tok.transpose(1, 2).reshape(batch, -1, side, side))
        s1, s3 = streams
        both = torch.cat([s1, s3], dim=1)
        pooled = torch.cat([both.mean(1, keepdim=True), both.amax(1, keepdim=True)], dim=1)
        masks = torch.sigmoid(self.mask_conv(pooled))  # (B, 2, s, s)
        self.last_masks = masks.detach()
        fused = s1 * masks[:, :1] + s3 * masks[:, 1:]
        y = self.out(fused).flatten(2).transpose(1, 2)  # (B, N, W)
        return torch.cat([cls, y], dim=1)
