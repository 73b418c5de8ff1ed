"""The ladder side stream beside the frozen tower: closed form, gradient flow, teacher sharing."""

from __future__ import annotations

import copy

import pytest
import torch

from ramlico.modules.ladder import LadderLocalAdapter
from ramlico.modules.saa import self_aware_attention


@pytest.fixture
def ladder(tiny_clip):
    torch.manual_seed(0)
    visual = tiny_clip.model.visual
    return LadderLocalAdapter(
        width=visual.transformer.width,
        text_dim=tiny_clip.embed_dim,
        n_blocks=2,
        saa_layers=[0, 1],
        tss_layers=[1],
        visual_prompt_layers=[1],
        visual_prompt_len=3,
    ).eval()


@pytest.fixture
def text(tiny_clip):
    return torch.randn(4, tiny_clip.embed_dim, generator=torch.Generator().manual_seed(1))


def test_outputs_follow_the_closed_form(tiny_clip, ladder, text, images):
    visual = tiny_clip.model.visual
    blocks = visual.transformer.resblocks
    out = ladder(visual, images, text)
    # literal two-stream computation
    x0 = ladder.embed(visual, images)
    x1, h0 = ladder.block(blocks[0], x0)
    e = ladder.visual_prompts["1"].expand(images.shape[0], -1, -1)
    x2_full, h1 = ladder.block(blocks[1], torch.cat([x1, e], 1))
    x2 = x2_full[:, :17]
    r = x0 + self_aware_attention(h0, blocks[0].attn) + self_aware_attention(h1, blocks[1].attn, 17)
    r = r + ladder.tss["1"](x2, text)
    torch.testing.assert_close(out.global_embed, ladder.project(visual, x2[:, 0]))
    torch.testing.assert_close(out.regions, ladder.project(visual, r[:, 1:]))
    assert out.regions.shape == (3, 16, tiny_clip.embed_dim)


def test_global_feature_ignores_tss_but_follows_visual_prompts(tiny_clip, ladder, text, images):
    visual = tiny_clip.model.visual
    ref = ladder(visual, images, text)
    other = copy.deepcopy(ladder)
    with torch.no_grad():
        for p in other.tss.parameters():
            p.add_(torch.randn_like(p))
    moved = other(visual, images, text)
    assert torch.equal(moved.global_embed, ref.global_embed)
    assert not torch.allclose(moved.regions, ref.regions)
    with torch.no_grad():
        other.visual_prompts["1"].add_(
            torch.randn_like(other.visual_prompts["1"])
        )  # (a constant shift would vanish in LN)
    assert not torch.allclose(other(visual, images, text).global_embed, ref.global_embed)


def test_teacher_shares_the_prefix_and_equals_a_plain_saa_run(tiny_clip, ladder, text, images):
    visual = tiny_clip.model.visual
    both = ladder(visual, images, text, with_teacher=True)
    alone = ladder(visual, images, None, adapt=False)
    torch.testing.assert_close(both.teacher_regions, alone.regions)
    assert not both.teacher_regions.requires_grad


def test_only_the_side_network_gets_gradients(tiny_clip, ladder, text, images):
    visual = tiny_clip.model.visual
    ladder.train()
    text = text.clone().requires_grad_(True)
    out = ladder(visual, images, text)
    (out.regions.square().mean() + out.global_embed.square().mean()).backward()
    assert all(p.grad is None for p in tiny_clip.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ladder.parameters())
    assert text.grad is not None


def test_mean_combination_halves_saa_and_tss_in_adapted_blocks(tiny_clip, ladder, text, images):
    visual = tiny_clip.model.visual
    mean = copy.deepcopy(ladder)
    mean.combine = "mean"
    s, m = ladder(visual, images, text), mean(visual, images, text)
    assert not torch.allclose(s.regions, m.regions)
    torch.testing.assert_close(s.global_embed, m.global_embed)


def test_bad_layer_and_combine_values_are_named(tiny_clip):
    with pytest.raises(ValueError, match=r"model.tss_layers=\[5\]: block 5 is outside the tower"):
        LadderLocalAdapter(64, 32, 2, saa_layers=[0], tss_layers=[5])
    with pytest.raises(ValueError, match="lla_combine"):
        LadderLocalAdapter(64, 32, 2, saa_layers=[0], combine="avg")


def test_frozen_prefix_builds_no_graph_and_adapted_blocks_do(tiny_clip, ladder, text, images):
    blocks = tiny_clip.model.visual.transformer.resblocks
    grad_on: dict[int, list[bool]] = {0: [], 1: []}
    handles = [
        blocks[i].ln_1.register_forward_pre_hook(  # the ladder runs the block's parts itself
            lambda m, a, i=i: grad_on[i].append(torch.is_grad_enabled())
        )
        for i in (0, 1)
    ]
    try:
        out = ladder(tiny_clip.model.visual, images, text, with_teacher=True)
    finally:
        for h in handles:
            h.remove()
    assert grad_on[0] == [False]  # block 0: before the first adapted block, run once, no graph
    assert grad_on[1] == [False, True]  # block 1: teacher pass (no graph), then the student
    assert out.regions.requires_grad and not out.teacher_regions.requires_grad
