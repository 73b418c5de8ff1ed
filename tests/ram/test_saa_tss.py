"""SAA (value-value attention of a frozen block) and TSS (the trainable local adapter)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ramlico.modules.saa import saa_attention_map, self_aware_attention
from ramlico.modules.tss import TextGuidedSpatialSelection


def _mha(width: int, heads: int, seed: int = 0) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    return nn.MultiheadAttention(width, heads, batch_first=True)


def test_saa_attention_peaks_on_the_diagonal_for_equal_norm_tokens():
    # one head, identity value projection, zero bias: A = softmax(h h^T / sqrt(d)); with
    # equal-norm distinct tokens the diagonal |h_i|^2 beats every h_i . h_j (Cauchy-Schwarz).
    width = 16
    attn = _mha(width, 1)
    with torch.no_grad():
        attn.in_proj_weight[2 * width :] = torch.eye(width)
        attn.in_proj_bias.zero_()
    h = torch.nn.functional.normalize(torch.randn(2, 10, width), dim=-1) * 5.0
    a = saa_attention_map(h, attn)[:, 0]  # (B, T, T)
    assert torch.equal(a.argmax(-1), torch.arange(10).expand(2, 10))
    # hand value of one entry: softmax row of h h^T / 4
    logits = h[0] @ h[0].T / math.sqrt(width)
    torch.testing.assert_close(a[0, 3], torch.softmax(logits[3], -1))
    # diagonal-dominant: the diagonal exceeds the rest of its row summed for well-separated tokens
    assert (a.diagonal(dim1=-2, dim2=-1) > 0.5).float().mean() > 0.8


def test_saa_equals_a_per_head_loop_with_the_blocks_projections():
    width, heads, d = 24, 3, 8
    attn = _mha(width, heads, seed=1)
    h = torch.randn(2, 7, width, dtype=torch.float64)
    attn = attn.double()
    wv, bv = attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :]
    out = []
    for k in range(heads):
        v = h @ wv[k * d : (k + 1) * d].T + bv[k * d : (k + 1) * d]
        out.append(torch.softmax(v @ v.transpose(1, 2) / math.sqrt(d), -1) @ v)
    expected = torch.cat(out, -1) @ attn.out_proj.weight.T + attn.out_proj.bias
    torch.testing.assert_close(self_aware_attention(h, attn), expected, rtol=1e-10, atol=1e-10)


def test_saa_ignores_appended_prompt_tokens():
    attn = _mha(16, 2)
    h = torch.randn(2, 5, 16)
    with_prompts = torch.cat([h, torch.randn(2, 3, 16)], dim=1)
    torch.testing.assert_close(
        self_aware_attention(with_prompts, attn, n_tokens=5), self_aware_attention(h, attn)
    )


def test_tss_parameter_count_matches_ram():
    assert sum(p.numel() for p in TextGuidedSpatialSelection(768, 512).parameters()) == 4_330_532


def test_tss_shapes_masks_class_token_and_text_gradient():
    torch.manual_seed(0)
    tss = TextGuidedSpatialSelection(width=24, text_dim=16)
    x = torch.randn(3, 1 + 16, 24)
    text = torch.randn(5, 16, requires_grad=True)
    y = tss(x, text)
    assert y.shape == (3, 17, 24)
    assert torch.equal(y[:, 0], x[:, 0])  # class-token slot = the main stream's class token
    masks = tss.last_masks
    assert masks.shape == (3, 2, 4, 4)
    assert masks.min() >= 0 and masks.max() <= 1
    y[:, 1:].sum().backward()
    assert text.grad is not None and text.grad.abs().sum() > 0  # not detached


def test_tss_rejects_a_non_square_grid():
    with pytest.raises(ValueError, match="1 \\+ s\\*s tokens"):
        TextGuidedSpatialSelection(8, 4)(torch.randn(1, 6, 8), torch.randn(2, 4))
