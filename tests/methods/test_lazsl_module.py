"""The LaZSL LightningModule on the tiny random CLIP."""

from __future__ import annotations

import json

import pytest
import torch

from ramlico.methods import LaZSL
from ramlico.methods.lazsl import resolve_descriptors_file
from ramlico.zeroshot import lazsl_scores, sample_crops


@pytest.fixture
def module(tiny_clip):
    model = LaZSL(tiny_clip, "generated_shapes", num_crops=6, tol=None, max_iter=20)
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
    ref = lazsl_scores(glob, crops, desc, mask, tol=None, max_iter=20, warn=False)
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
