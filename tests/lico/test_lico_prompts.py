"""LICO prompt learner: layout, truncation parity, dynamic context, frozen tower, gradients."""

from __future__ import annotations

import pytest
import torch

from ramlico.modules.mapping import MappingMLP
from ramlico.modules.prompt_learner import LICOPromptLearner

NAMES = ["red circle", "blue_square", "green triangle"]


@pytest.fixture(scope="module")
def learner(tiny_clip):
    return LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, seed=0)


def test_prompt_layout_and_eot_index(learner, tiny_clip):
    ids = tiny_clip.tokenize(["X X X X blue square."])[0]
    eot = int(ids.argmax())
    assert learner.eot_index[1].item() == eot
    # SOS + 4 ctx + "blue square ." + EOT: the truncated length ends at the longest EOT
    assert learner.token_ids.shape == (3, int(learner.eot_index.max()) + 1)
    assert learner.class_names[1] == "blue square"  # "_" replaced by a space


def test_truncated_and_full_length_encodings_agree(tiny_clip, learner):
    full = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, seed=0, truncate=False)
    assert full.token_ids.shape[1] == 77
    idx = torch.tensor([2, 0])
    with torch.no_grad():
        a, b = learner(idx), full(idx)
    assert a.shape == (4, 2, tiny_clip.embed_dim)  # (M = n_ctx variants, K_b, D)
    assert (a - b).abs().max().item() < 1e-5  # causal mask: positions after EOT are never seen


def test_variant_eot_features_equal_open_clip_encode_text_with_the_same_embeddings(
    tiny_clip, learner
):
    # With the context set to the token embedding of "X", prompt r of class k is exactly the
    # string "X X X X {name}." encoded by open_clip itself.
    x_emb = tiny_clip.model.token_embedding.weight[tiny_clip.tokenize(["X"])[0, 1]]
    probe = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, n_variants=2)
    with torch.no_grad():
        probe.ctx.copy_(x_emb.expand(2, 4, -1))
        got = probe(torch.tensor([0, 1, 2]))
        ref = tiny_clip.encode_text(
            tiny_clip.tokenize([f"X X X X {n.replace('_', ' ')}." for n in NAMES])
        )
    torch.testing.assert_close(got[0], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], ref, atol=1e-5, rtol=1e-5)


def test_variant_init_rolls_the_base_context(tiny_clip, learner):
    ctx = learner.ctx.detach()
    for r in range(4):
        torch.testing.assert_close(ctx[r], torch.roll(ctx[0], r, dims=0))
    same = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, seed=0, variant_init="identical")
    assert torch.equal(same.ctx[0], same.ctx[3])
    assert ctx.std().item() == pytest.approx(0.02, rel=0.3)


def test_init_phrase_fills_the_last_context_slots(tiny_clip):
    pl = LICOPromptLearner(tiny_clip, NAMES, n_ctx=6, init_phrase="a type of aircraft", seed=0)
    ids = tiny_clip.tokenize(["a type of aircraft"])[0]
    phrase = tiny_clip.model.token_embedding.weight[ids[1 : int(ids.argmax())]]
    for r in range(6):
        torch.testing.assert_close(pl.ctx[r, 2:].detach(), phrase)
    with pytest.raises(ValueError, match="shorter than n_ctx"):
        LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, init_phrase="a type of aircraft")


def test_dynamic_context_permutation_changes_features_not_shapes(learner):
    idx = torch.tensor([0, 1, 2])
    with torch.no_grad():
        base = learner(idx)
        perm = learner(idx, torch.tensor([3, 2, 1, 0]))
        ident = learner(idx, torch.arange(4))
    assert perm.shape == base.shape
    assert (perm - base).abs().max().item() > 1e-4
    torch.testing.assert_close(ident, base)


def test_all_tokens_mode_gives_n_ctx_plus_one_rows(tiny_clip):
    pl = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, feature_mode="all_tokens", seed=0)
    out = pl(torch.tensor([1]))
    assert pl.num_rows == 5 and out.shape == (5, 1, tiny_clip.embed_dim)


def test_gradients_reach_context_and_mapping_but_not_the_text_tower(tiny_clip):
    pl = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, seed=0)
    mlp = MappingMLP(pl.embed_dim, 16, hidden_dim=8, dropout=0.0)
    before = {k: v.clone() for k, v in pl.text.state_dict().items()}
    out = mlp(pl(torch.tensor([0, 2]), torch.randperm(4)))  # (M, K_b, 16)
    out.pow(2).sum().backward()
    assert pl.ctx.grad is not None and pl.ctx.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mlp.parameters())
    assert all(p.grad is None for p in pl.text.parameters())
    assert all(not p.requires_grad for p in pl.text.parameters())
    pl.train()
    assert not pl.text.training  # the frozen tower stays in eval mode
    for k, v in pl.text.state_dict().items():
        assert torch.equal(v, before[k])
    assert "ctx" in dict(pl.named_parameters()) and pl.text.is_frozen


def test_random_frozen_prompts_do_not_train(tiny_clip):
    pl = LICOPromptLearner(tiny_clip, NAMES, n_ctx=4, prompt_mode="random_frozen")
    assert not pl.ctx.requires_grad
    with pytest.raises(ValueError, match="prompt_mode"):
        LICOPromptLearner(tiny_clip, NAMES, prompt_mode="fixed")
