"""The base scoring contract: scores(images, label_names), label_scores (logits + evidence)."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from ramlico.explain.heatmaps import patch_grid
from ramlico.methods import RAM, CLIPAdapter, CLIPZeroShot, LaZSL, RamlicoModule

NAMES = ["red circle", "blue square", "green star", "yellow cross"]


def _ram(backbone):
    torch.manual_seed(0)
    return RAM(backbone, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
               text_prompt_layers=[1]).eval()  # fmt: skip


def test_ram_label_scores_are_its_fusion_logits_and_plan_columns(tiny_clip, images):
    model = _ram(tiny_clip)
    out = model.label_scores(images, NAMES)
    with torch.no_grad():
        ref = model(images, NAMES)
    torch.testing.assert_close(out.scores, ref["scores"])
    torch.testing.assert_close(model.scores(images, NAMES), ref["scores"])
    # logit = (s_glb + (C / C_train) s_loc) / 2 (without training labels C_train = C), with
    # s_loc = plan-weighted mean similarity / (C tau_loc)
    mean_sim = (ref["plan"] * 4 * ref["similarity"]).sum(1)
    torch.testing.assert_close(out.logits, 0.5 * (ref["s_glb"] + mean_sim / (4 * 2e-3)))
    model.label_names = {"train": NAMES[:2]}
    torch.testing.assert_close(
        model.label_scores(images, NAMES, evidence=False).logits,
        0.5 * (ref["s_glb"] + 2 * ref["s_loc"]),
    )
    # one map per label on the 4 x 4 patch grid of the 64 px / 16 px tiny ViT, each a
    # distribution over the patches: the plan's label column (mass 1/C) times C
    assert out.heatmaps.shape == (3, 4, 4, 4)
    torch.testing.assert_close(out.heatmaps.sum((-2, -1)), torch.ones(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.heatmaps[1, 2].flatten(), 4 * ref["plan"][1, :, 2])
    assert model.label_scores(images, NAMES, evidence=False).heatmaps is None


def test_ram_logit_of_a_label_barely_depends_on_the_other_labels(tiny_clip, images):
    # The fused softmax score of "red circle" changes with the label list; its logit's global
    # part does not, and the local part is a plan-weighted average similarity in [-1, 1] / tau.
    model = _ram(tiny_clip)
    two = model.label_scores(images, NAMES[:2], evidence=False)
    four = model.label_scores(images, NAMES, evidence=False)
    assert (two.scores[:, 0] - four.scores[:, 0]).abs().max() > 0.05
    with torch.no_grad():
        g2, g4 = model(images, NAMES[:2])["s_glb"], model(images, NAMES)["s_glb"]
    torch.testing.assert_close(g2[:, 0], g4[:, 0])


def test_clip_zero_shot_evidence_is_the_patch_softmax_of_the_classifier(tiny_clip, images):
    model = CLIPZeroShot(tiny_clip, readout="patch")
    out = model.label_scores(images, NAMES)
    torch.testing.assert_close(out.scores, model.scores(images, NAMES), rtol=1e-5, atol=1e-5)
    feats = tiny_clip.encode_image(images)
    w = tiny_clip.zero_shot_classifier(NAMES)
    dense = tiny_clip.logit_scale * F.normalize(feats.patch_tokens[1], dim=-1) @ w
    expected = patch_grid(dense.softmax(dim=1))
    torch.testing.assert_close(out.heatmaps, expected)
    assert out.heatmaps.shape == (3, 4, 4, 4)


def test_clip_adapter_scores_any_label_list_without_evidence(tiny_clip, images):
    model = CLIPAdapter(tiny_clip, optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    out = model.label_scores(images, NAMES)
    assert out.heatmaps is None
    torch.testing.assert_close(out.logits, model.scores(images, NAMES))
    torch.testing.assert_close(model.scores(images, NAMES[::-1]), out.scores.flip(-1))


def test_split_keyed_methods_are_scored_through_a_registered_label_list(tiny_clip, images):
    model = LaZSL(tiny_clip, "generated_shapes", num_crops=4, explain_images=0,
                  solver={"tol": None, "max_iter": 10})  # fmt: skip
    names = ["red circle", "blue star", "green cross"]
    model.label_names = {"test": names}
    ref = model.predict_scores(images, "test")
    model.on_test_epoch_start()  # the crop seeds restart
    torch.testing.assert_close(model.scores(images, names), ref)
    registered = [s for s in model.label_names if s.startswith("labels-")]
    assert len(registered) == 1 and model.label_names[registered[0]] == names


def test_a_method_without_scores_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="must implement scores"):

        class Nothing(RamlicoModule):  # noqa: F841
            pass
