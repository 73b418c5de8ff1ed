from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone, list_clip_models

TINY = "ramlico-tiny-ViT"


def test_tiny_config_is_registered_and_listed():
    assert TINY in list_clip_models()


def test_unknown_model_lists_available_names():
    with pytest.raises(
        ValueError, match="unknown open_clip model 'ViT-B-33'; available: .*ViT-B-16"
    ):
        CLIPBackbone("ViT-B-33")


def test_shapes_and_global_embedding_matches_open_clip(tiny_clip, images):
    feats = tiny_clip.encode_image(images)
    assert feats.global_embed.shape == (3, 32)
    assert set(feats.patch_tokens) == {1}  # -1 resolved to the last of 2 blocks
    assert feats.patch_tokens[1].shape == (3, 16, 32)  # (64 / 16)^2 patches, embed dim 32
    direct = tiny_clip.model.encode_image(images, normalize=False)  # documented: not normalised
    torch.testing.assert_close(feats.global_embed, direct, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tiny_clip.embed_image(images), tiny_clip.model.encode_image(images))


def test_patch_projection_is_the_global_pooling_path(tiny_clip, images):
    # With 'tok' pooling the global embedding is ln_post(CLS) @ proj: project_tokens applied to
    # the last block's CLS token must reproduce it exactly.
    out = tiny_clip.model.visual.forward_intermediates(
        images, indices=[1], output_fmt="NLC", output_extra_tokens=True
    )
    cls = out["image_intermediates_prefix"][0]
    projected = tiny_clip.project_tokens(cls)[:, 0]
    torch.testing.assert_close(projected, tiny_clip.embed_image(images), rtol=1e-5, atol=1e-6)


def test_frozen_by_default_and_stays_in_eval_mode(tiny_clip):
    assert not any(p.requires_grad for p in tiny_clip.parameters())
    tiny_clip.train()
    assert not tiny_clip.model.training
    unfrozen = CLIPBackbone(TINY, freeze=False)
    assert all(p.requires_grad for p in unfrozen.parameters())


def test_seeded_random_init_is_reproducible():
    a, b, c = (
        CLIPBackbone(TINY, init_seed=1),
        CLIPBackbone(TINY, init_seed=1),
        CLIPBackbone(TINY, init_seed=2),
    )
    assert torch.equal(a.model.visual.proj, b.model.visual.proj)
    assert not torch.equal(a.model.visual.proj, c.model.visual.proj)


def test_local_weights_file_is_loaded_offline(tmp_path, tiny_clip):
    path = tmp_path / "tiny_weights.pt"
    torch.save(tiny_clip.model.state_dict(), path)
    loaded = CLIPBackbone(TINY, pretrained=str(path), init_seed=99)
    for (name, p), q in zip(
        tiny_clip.model.state_dict().items(), loaded.model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name


def test_missing_local_file_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained weights file not found"):
        CLIPBackbone(TINY, pretrained=str(tmp_path / "nope.safetensors"))


def test_zero_shot_classifier_is_mean_of_unit_prompt_embeddings(tiny_clip):
    names, templates = ["cat", "red circle"], ("a photo of a {}.", "a drawing of a {}.")
    w = tiny_clip.zero_shot_classifier(names, templates)
    assert w.shape == (32, 2)
    for j, name in enumerate(names):
        tokens = tiny_clip.tokenize([t.format(name) for t in templates])
        emb = F.normalize(tiny_clip.encode_text(tokens), dim=-1).mean(0)
        torch.testing.assert_close(w[:, j], F.normalize(emb, dim=0), rtol=1e-5, atol=1e-6)


def test_tokenizer_is_open_clips(tiny_clip):
    ref = open_clip.get_tokenizer(TINY)(["a photo of a dog"])
    assert torch.equal(tiny_clip.tokenize(["a photo of a dog"]), ref)
    assert tiny_clip.image_size == 64 and tiny_clip.embed_dim == 32
