"""Deep label prompts: plain open_clip at length 0, the reference 77-token layout, gradients."""

from __future__ import annotations

import pytest
import torch

from ramlico.modules.deep_prompts import DeepPromptTextEncoder
from ramlico.modules.text_tower import FrozenCLIPTextTower

NAMES = ["cat", "red square", "tv", "a very long label name with several words"]


@pytest.fixture
def tower(tiny_clip):
    return FrozenCLIPTextTower(tiny_clip)


@pytest.fixture
def tokens(tiny_clip):
    return tiny_clip.tokenize([f"A photo of a {n}." for n in NAMES])


def _reference(model, tokens, prompts: dict[int, torch.Tensor]) -> torch.Tensor:
    """The reference layout: 77 tokens between blocks, prompts at 1..n, last n set aside."""
    x = model.token_embedding(tokens) + model.positional_embedding
    for i, blk in enumerate(model.transformer.resblocks):
        if i in prompts:
            n = prompts[i].shape[0]
            seq = torch.cat([x[:, :1], prompts[i].expand(x.shape[0], -1, -1), x[:, 1:]], 1)
            seq, aside = seq[:, :77], seq[:, 77:]
            out = blk(seq, attn_mask=model.attn_mask)
            x = torch.cat([out[:, :1], out[:, 1 + n :], aside], 1)
            assert x.shape[1] == 77
        else:
            x = blk(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ model.text_projection


def test_length_zero_equals_open_clip_exactly(tiny_clip, tower, tokens):
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=0, truncate=False)
    assert torch.equal(enc(tower, tokens), tiny_clip.model.encode_text(tokens))
    fast = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=0)
    torch.testing.assert_close(fast(tower, tokens), tiny_clip.model.encode_text(tokens))


@pytest.mark.parametrize("layers", [[1], [0, 1]])
def test_truncated_and_full_paths_equal_the_reference_layout(tiny_clip, tower, tokens, layers):
    torch.manual_seed(0)
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=layers, prompt_len=4)
    full = DeepPromptTextEncoder(64, 2, prompt_layers=layers, prompt_len=4, truncate=False)
    full.load_state_dict(enc.state_dict())
    with torch.no_grad():
        ref = _reference(tiny_clip.model, tokens, {i: enc.prompts[str(i)] for i in layers})
        fast, slow = enc(tower, tokens), full(tower, tokens)
    torch.testing.assert_close(slow, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    plain = tiny_clip.model.encode_text(tokens)
    assert (fast - plain).abs().max() > 1e-3  # the prompts do change the features


def test_gradients_reach_the_prompts_only(tiny_clip, tower, tokens):
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
    enc(tower, tokens).sum().backward()
    assert enc.prompts["1"].grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_clip.parameters())


def test_the_frozen_prefix_is_cached(tower, tokens):
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
    a = enc(tower, tokens)
    assert len(enc.prefix_cache) == 1
    b = enc(tower, tokens)
    assert len(enc.prefix_cache) == 1
    torch.testing.assert_close(a, b)


def test_a_bf16_prefix_is_not_reused_by_an_fp16_call(tower, tokens):
    torch.manual_seed(0)
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
    fresh = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
    fresh.load_state_dict(enc.state_dict())
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = enc(tower, tokens)  # caches the bf16 prefix
        with torch.autocast("cpu", dtype=torch.float16):
            fp16 = enc(tower, tokens)
            expected = fresh(tower, tokens)  # an fp16 prefix computed from scratch
        plain = enc(tower, tokens)  # fp32, outside autocast
        expected_plain = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
        expected_plain.load_state_dict(enc.state_dict())
        fp32 = expected_plain(tower, tokens)
    assert torch.equal(fp16, expected)
    assert torch.equal(plain, fp32)
    assert (bf16.float() - fp16.float()).abs().max() > 0  # the two precisions do differ here
    assert len(enc.prefix_cache) == 3  # one prefix per (weights dtype, autocast dtype)


def test_the_prefix_cache_is_keyed_by_the_weights_dtype(tiny_clip, tower, tokens):
    import copy

    tower64 = FrozenCLIPTextTower(copy.deepcopy(tiny_clip).double())
    torch.manual_seed(0)
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4)
    fresh = copy.deepcopy(enc).double()
    with torch.no_grad():
        enc(tower, tokens)  # caches the fp32 prefix
        enc.double()
        got = enc(tower64, tokens)
        expected = fresh(tower64, tokens)
    assert got.dtype == torch.float64 and torch.equal(got, expected)


def test_full_layout_rejects_an_eot_among_the_set_aside_tokens(tiny_clip, tower):
    long = tiny_clip.tokenize(["word " * 74])
    enc = DeepPromptTextEncoder(64, 2, prompt_layers=[1], prompt_len=4, truncate=False)
    with pytest.raises(ValueError, match="too long"):
        enc(tower, long)
