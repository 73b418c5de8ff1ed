"""Self-aware attention (SAA), RAM's parameter-free regional read-out (docs/ram.md, "Streams").

SAA re-uses a frozen block's value projection and output projection and replaces the query-key
attention by value-value attention, per head ``k`` (head width ``d``)::

    V_k = h W_V^k + b_V^k                  (B, T, d)     value third of the block's in_proj
    A_k = softmax_row(V_k V_k^T / sqrt(d)) (B, T, T)     no mask, no dropout
    SAA(h) = [A_1 V_1 | ... | A_H V_H] W_O^T + b_O       (B, T, W)

The diagonal of ``V V^T`` holds the squared token norms, so every token attends mostly to itself and
to tokens with similar values ("self-focused" maps instead of CLIP's global attention sinks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["self_aware_attention", "saa_attention_map"]

Tensor = torch.Tensor


def _values(h: Tensor, attn: nn.MultiheadAttention, n_tokens: int | None) -> Tensor:
    """``(B, T, W)`` -> ``(B, H, T', d)`` per-head values of the first ``n_tokens`` tokens."""
    if not attn.batch_first:
        raise ValueError("self_aware_attention expects a batch_first nn.MultiheadAttention")
    if attn.in_proj_weight is None:
        raise ValueError("self_aware_attention needs a fused in_proj (q, k, v of equal width)")
    if n_tokens is not None:
        h = h[:, :n_tokens]
    width = attn.embed_dim
    w_v = attn.in_proj_weight[2 * width :]
    b_v = attn.in_proj_bias[2 * width :] if attn.in_proj_bias is not None else None
    v = F.linear(h, w_v.to(h.dtype), None if b_v is None else b_v.to(h.dtype))
    batch, tokens, _ = v.shape
    return v.view(batch, tokens, attn.num_heads, width // attn.num_heads).transpose(1, 2)


def self_aware_attention(
    h: Tensor, attn: nn.MultiheadAttention, n_tokens: int | None = None
) -> Tensor:
    """SAA read-out of one block.

    Args:
        h: ``(B, T, W)`` the block's LayerNorm-1 output (the input of its own attention).
        attn: the block's frozen ``nn.MultiheadAttention`` (batch-first, fused in_proj).
        n_tokens: use only the first ``n_tokens`` tokens (drops appended visual prompts).

    Returns:
        ``(B, T', W)`` with ``T' = n_tokens or T``.
    """
    v = _values(h, attn, n_tokens)
    o = F.scaled_dot_product_attention(v, v, v)  # softmax(V V^T / sqrt(d)) V, per head
    o = o.transpose(1, 2).reshape(v.shape[0], v.shape[2], attn.embed_dim)
    return F.linear(
        o,
        attn.out_proj.weight.to(o.dtype),
        None if attn.out_proj.bias is None else attn.out_proj.bias.to(o.dtype),
    )


def saa_attention_map(
    h: Tensor, attn: nn.MultiheadAttention, n_tokens: int | None = None
) -> Tensor:
    """``(B, H, T', T')`` SAA attention weights (for inspection and tests)."""
    v = _values(h, attn, n_tokens)
    return torch.softmax(v @ v.transpose(-1, -2) / v.shape[-1] ** 0.5, dim=-1)
