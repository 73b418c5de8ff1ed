"""The LaZSL LightningModule on the tiny random CLIP."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from ramlico.methods import LaZSL
from ramlico.methods.lazsl import resolve_descriptors_file
from ramlico.zeroshot import LAZSL_SOLVER, lazsl_scores, sample_crops


@pytest.fixture
def module(tiny_clip):
    # a mapping changes only the fields it names: the LaZSL preset with 20 fixed iterations
    model = LaZSL(tiny_clip, "generated_shapes", num_crops=6, solver={"tol": None, "max_iter": 20})
    model.label_names = {"test": ["red circle", "blue star", "green cross"]}
    model.eval_splits = ["test"]
    return model


def test_scores_are_the_engine_scores_of_its_crops_and_descriptors(module, images):
    scores = module.predict_scores(images, "test")
    assert scores.shape == (3, 3) and torch.isfinite(scores).all()
    module.on_test_epoch_start()  # crop seeds restart: the same boxes again
    crops = module.crop_embeddings(images)
    desc, mask = module.descriptor_embeddings("test")
    assert desc.shape == (3, 5, 32) and mask.all()  # 5 bundled descriptors per class
    glob = torch.nn.functional.normalize(module.backbone.embed_image(images), dim=-1)
    solver = replace(LAZSL_SOLVER, tol=None, max_iter=20)
    assert module.solver == solver
    ref = lazsl_scores(glob, crops, desc, mask, solver=solver, warn=False)
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-6)


def test_crops_follow_the_seeded_boxes(module):
    # A constant image with one bright box: a crop's mean brightness tells where it was cut.
    image = torch.zeros(1, 3, 64, 64)
    box = sample_crops(64, 64, 6, scale=(0.6, 0.9), seed=1, index=0)[0]
    x1, y1, x2, y2 = box.tolist()
    image[..., y1:y2, x1:x2] = 1.0
    from torchvision.ops import roi_align

    crops = roi_align(image, [box[None].float()], output_size=(64, 64), aligned=True)
    assert crops.mean().item() == pytest.approx(1.0, abs=0.05)  # the first crop is the box


def test_descriptor_file_errors(tmp_path, tiny_clip):
    with pytest.raises(FileNotFoundError, match="generated_shapes"):
        resolve_descriptors_file("no_such_descriptors")
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"red circle": ["round"]}))
    model = LaZSL(tiny_clip, str(path), num_crops=2)
    model.label_names = {"test": ["red circle", "blue star"]}
    with pytest.raises(ValueError, match="blue star"):
        model.descriptor_embeddings("test")


def _baseline(tiny_clip, method, **kwargs):
    model = LaZSL(tiny_clip, "generated_shapes", method=method, **kwargs)
    model.label_names = {"test": ["red circle", "blue star", "green cross"]}
    model.eval_splits = ["test"]
    return model


def _encode(clip, sentences):
    return torch.nn.functional.normalize(clip.encode_text(clip.tokenize(sentences)), dim=-1)


def test_cupl_classifier_is_the_normalised_mean_of_sentence_embeddings(tiny_clip, images, tmp_path):
    sentences = {
        "red circle": ["A red circle is round.", "A circle painted red."],
        "blue star": ["A blue star has five points."],
        "green cross": ["A green plus sign.", "Two green bars crossing.", "A cross."],
        "unused": ["Never scored."],
    }
    path = tmp_path / "cupl.json"
    path.write_text(json.dumps(sentences))
    model = _baseline(tiny_clip, "cupl", cupl_file=str(path))
    scores = model.predict_scores(images, "test")
    with torch.no_grad():
        classifier = torch.stack([
            torch.nn.functional.normalize(_encode(tiny_clip, sentences[c]).mean(0), dim=0)
            for c in model.label_names["test"]
        ])  # fmt: skip
        glob = torch.nn.functional.normalize(tiny_clip.embed_image(images), dim=-1)
    torch.testing.assert_close(scores, glob @ classifier.T, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="cupl_file"):
        LaZSL(tiny_clip, "generated_shapes", method="cupl")
    plus = _baseline(tiny_clip, "cupl", cupl_file=str(path), cupl_plus_templates=True,
                     templates=["a photo of a {}."])  # fmt: skip
    assert plus.baseline_sentences("test")[1] == [
        "A blue star has five points.", "a photo of a blue star."
    ]  # fmt: skip


def test_waffle_scores_are_mean_cosines_over_30_seeded_random_sentences(tiny_clip, images):
    model = _baseline(tiny_clip, "waffle", waffle_seed=3)
    texts = model.baseline_sentences("test")
    assert [len(t) for t in texts] == [30, 30, 30]
    assert texts[1][0].startswith("A photo of a blue star, which")
    assert _baseline(tiny_clip, "waffle", waffle_seed=3).baseline_sentences("test") == texts
    assert _baseline(tiny_clip, "waffle", waffle_seed=4).baseline_sentences("test") != texts
    scores = model.predict_scores(images, "test")
    with torch.no_grad():
        glob = torch.nn.functional.normalize(tiny_clip.embed_image(images), dim=-1)
        ref = torch.stack([(glob @ _encode(tiny_clip, t).T).mean(1) for t in texts], dim=1)
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-5)


def test_clip_and_dclip_baselines(tiny_clip, images):
    templates = ["a photo of a {}.", "a drawing of a {}."]
    model = _baseline(tiny_clip, "clip", templates=templates)
    scores = model.predict_scores(images, "test")
    with torch.no_grad():
        glob = torch.nn.functional.normalize(tiny_clip.embed_image(images), dim=-1)
        classifier = tiny_clip.zero_shot_classifier(model.label_names["test"], templates)
    torch.testing.assert_close(scores, glob @ classifier.to(glob.dtype), rtol=0, atol=1e-5)
    dclip = _baseline(tiny_clip, "dclip")
    assert dclip.baseline_sentences("test") == dclip.descriptor_sentences("test")
    with pytest.raises(ValueError, match="model.method must be one of"):
        LaZSL(tiny_clip, "generated_shapes", method="lazsl2")
