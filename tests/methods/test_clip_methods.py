"""Zero-shot CLIP and CLIP-Adapter on the tiny random CLIP."""

from __future__ import annotations

import functools

import open_clip
import pytest
import torch
import torch.nn.functional as F

from ramlico.methods import CLIPAdapter, CLIPZeroShot

NAMES = {"train": ["red circle", "blue star"], "zsl": ["green cross", "red star", "blue square"]}


def _ready(model):
    model.label_names = dict(NAMES)
    model.eval_splits = ["zsl"]
    return model


def test_zero_shot_scores_equal_open_clip_classifier(tiny_clip, images):
    model = _ready(CLIPZeroShot(tiny_clip, templates=("a photo of a {}.", "art of a {}.")))
    scores = model.predict_scores(images, "zsl")
    clf = open_clip.build_zero_shot_classifier(
        tiny_clip.model, open_clip.get_tokenizer("ramlico-tiny-ViT"), NAMES["zsl"],
        ("a photo of a {}.".format, "art of a {}.".format), use_tqdm=False,
    )  # fmt: skip
    ref = (
        tiny_clip.model.logit_scale.exp()
        * F.normalize(tiny_clip.model.encode_image(images), dim=-1)
        @ clf
    )
    assert scores.shape == (3, 3)
    torch.testing.assert_close(scores, ref, rtol=1e-5, atol=1e-5)
    assert CLIPZeroShot.eval_only and not any(p.requires_grad for p in model.parameters())


def test_adapter_step_trains_only_the_adapter(tiny_clip, images):
    opt = functools.partial(torch.optim.SGD, lr=0.1)
    model = _ready(CLIPAdapter(tiny_clip, optimizer=opt, alpha=0.5))
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    model.log = lambda *a, **k: None  # no Trainer attached
    loss = model.training_step((images, targets), 0)
    # Zero bias and cosines in [-1, 1] scaled by 10: the loss is finite and positive.
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "log_scale", "bias", "adapter.mlp.0.weight", "adapter.mlp.0.bias",
        "adapter.mlp.2.weight", "adapter.mlp.2.bias",
    }  # fmt: skip
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    optimizer = model.configure_optimizers()
    before = model.backbone.model.visual.proj.clone()
    optimizer.step()
    assert torch.equal(before, model.backbone.model.visual.proj)
    assert model.predict_scores(images, "zsl").shape == (3, 3)  # any label set at test time


def test_adapter_with_alpha_zero_is_scaled_zero_shot(tiny_clip, images):
    model = _ready(CLIPAdapter(tiny_clip, optimizer=torch.optim.SGD, alpha=0.0, init_scale=100.0))
    zs = _ready(CLIPZeroShot(tiny_clip))
    # alpha = 0 leaves the embedding unchanged, so scores = 100 cos = zero-shot / logit_scale * 100
    expected = zs.predict_scores(images, "zsl") / tiny_clip.logit_scale * 100.0
    torch.testing.assert_close(model.predict_scores(images, "zsl"), expected, rtol=1e-4, atol=1e-4)


def test_heatmap_readouts(tiny_clip, images):
    """``patch``: softmax over the patches of the last block's projected patch tokens against the
    classifier; ``saa``: the value-value read-out of every block (RAM's frozen teacher regions).
    The scores do not depend on the read-out."""
    from ramlico.modules.ladder import LadderLocalAdapter, saa_streams

    names = ["cat", "dog", "car"]
    patch = _ready(CLIPZeroShot(tiny_clip, readout="patch"))
    saa = _ready(CLIPZeroShot(tiny_clip))
    out_p = patch.label_scores(images, names)
    out_s = saa.label_scores(images, names)
    torch.testing.assert_close(out_s.scores, out_p.scores, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_s.scores, saa.scores(images, names), rtol=1e-5, atol=1e-5)
    w = patch.text.classifier(names, patch.templates, patch.device)
    with torch.no_grad():
        z = tiny_clip.encode_image(images).patch_tokens[tiny_clip.patch_layers[-1]]
        visual = tiny_clip.model.visual
        n = len(visual.transformer.resblocks)
        _, r = saa_streams(visual, LadderLocalAdapter.embed(visual, images), n, range(n))
        zs = LadderLocalAdapter.project(visual, r[:, 1:])
    for tokens, out in ((z, out_p), (zs, out_s)):
        dense = tiny_clip.logit_scale * torch.nn.functional.normalize(tokens, dim=-1) @ w
        expected = torch.softmax(dense, dim=1).transpose(1, 2)  # (B, C, N)
        side = int(expected.shape[-1] ** 0.5)
        torch.testing.assert_close(out.heatmaps, expected.reshape(*expected.shape[:2], side, side))
    assert not torch.allclose(out_s.heatmaps, out_p.heatmaps)
    with pytest.raises(ValueError, match=r"model.readout must be one of \['saa', 'patch'\]"):
        CLIPZeroShot(tiny_clip, readout="cls")


def test_bad_templates_are_refused(tiny_clip):
    with pytest.raises(ValueError, match="needs one '\\{\\}'"):
        CLIPZeroShot(tiny_clip, templates=("a photo",))


def test_clip_adapter_names_a_misspelt_optimiser_or_scheduler_option(tiny_clip):
    with pytest.raises(TypeError, match=r"model.optimizer: AdamW has no option\(s\) \['lrr'\]"):
        CLIPAdapter(tiny_clip, optimizer=functools.partial(torch.optim.AdamW, lrr=1e-3))
    sched = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, Tmax=3)
    with pytest.raises(TypeError, match=r"model.scheduler: CosineAnnealingLR has no option"):
        CLIPAdapter(tiny_clip, optimizer=torch.optim.AdamW, scheduler=sched)


def test_otfusion_solver_settings_live_in_model_solver(tiny_clip):
    from ramlico.methods import OTFusion
    from ramlico.zeroshot import OTFUSION_SOLVER

    model = OTFusion(tiny_clip, solver={"reg": 0.05}, rounds=2)
    assert model.solver.reg == 0.05 and model.solver.max_iter == OTFUSION_SOLVER.max_iter
    assert model.solver.order == "cols_first"  # the rest of the preset is kept
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['eps'\].*model.solver"):
        OTFusion(tiny_clip, eps=0.01)
