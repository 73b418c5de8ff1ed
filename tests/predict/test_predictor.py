"""ramlico.load_predictor: rebuilt from the checkpoint alone; tags, probabilities, heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from drawing import LABELS, draw_images
from PIL import Image

import ramlico
from ramlico.cli.checkpoint import load_checkpoint
from ramlico.predict.calibration import Calibration
from ramlico.predict.predictor import select_tags


def test_select_tags_threshold_and_top_k():
    p = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2]])
    th = torch.tensor([0.5, 0.5, 0.7])
    assert select_tags(p, th) == [[0], []]  # 0.6 < its own threshold 0.7
    assert select_tags(p, torch.zeros(3), top_k=2) == [[0, 2], [1, 2]]
    assert select_tags(p, torch.full((3,), 0.15), top_k=1) == [[0], [1]]
    with pytest.raises(ValueError, match="top_k"):
        select_tags(p, th, top_k=0)


def test_checkpoint_predictor_equals_the_model_on_its_own_preprocessing(ram_run, tmp_path):
    ckpt_path, _ = ram_run
    predictor = ramlico.load_predictor(ckpt_path, device="cpu")
    ckpt = load_checkpoint(ckpt_path)
    assert predictor.labels == ckpt["ramlico"]["label_names"]["gzsl"]  # default label list
    assert predictor.calibration == Calibration.from_dict(ckpt["ramlico"]["calibration"])
    (path, _), = draw_images(tmp_path, 1, seed=5, size=90)  # another size than the model's
    labels = ["red circle", "blue square", "green star"]
    pred = predictor(path, labels=labels)[0]
    x = predictor.transform(Image.open(path).convert("RGB"))[None]
    assert x.shape == (1, 3, 64, 64)  # the run's data.image_size, restored from the checkpoint
    ref = predictor.model.label_scores(x, labels)
    np.testing.assert_allclose(pred.scores, ref.scores[0].numpy(), rtol=1e-6)
    probs = predictor.calibration.probabilities(ref.logits[0])
    np.testing.assert_allclose(pred.probabilities, probs.numpy(), rtol=1e-6)
    assert pred.tags == [n for n, p, t in sorted(zip(labels, probs, pred.thresholds, strict=True),
                         key=lambda x: -x[1]) if p >= t]  # fmt: skip
    side = 64 // predictor.model.backbone.model.visual.patch_size[0]  # the patch grid
    assert pred.heatmaps.shape == (3, side, side) and pred.size == (90, 90)
    np.testing.assert_allclose(pred.heatmap("blue square"), ref.heatmaps[0, 1].numpy(), rtol=1e-6)
    record = pred.to_record()
    assert set(record["labels"]) == set(labels) and record["width"] == 90
    assert 0 <= record["labels"]["red circle"]["peak_xy"][0] <= 90


def test_overrides_threshold_and_top_k(ram_run, tmp_path):
    predictor = ramlico.load_predictor(ram_run[0], device="cpu")
    paths = [p for p, _ in draw_images(tmp_path, 3, seed=6)]
    none = predictor(paths, LABELS, threshold=1.01)
    assert all(p.tags == [] for p in none)
    every = predictor(paths, LABELS, threshold=0.0)
    assert all(len(p.tags) == len(LABELS) for p in every)
    top = predictor(paths, LABELS, top_k=2, heatmaps=False)
    for p in top:
        assert p.heatmaps is None and len(p.tags) == 2
        assert p.tags == [LABELS[i] for i in np.argsort(-p.probabilities)[:2]]


def test_batches_mixed_inputs_in_order(ram_run, tmp_path):
    predictor = ramlico.load_predictor(ram_run[0], device="cpu", batch_size=2)
    (path, _), = draw_images(tmp_path, 1, seed=7)
    image = Image.open(path)
    out = predictor([path, image.convert("L"), np.asarray(image.convert("RGB"))], LABELS[:4])
    assert [p.image for p in out] == [str(path), "image_00001", "image_00002"]
    # same pixels in different batches (with another image): equal up to fp32 batching noise
    np.testing.assert_allclose(out[0].scores, out[2].scores, rtol=1e-4)
    with pytest.raises(ValueError, match="duplicates"):
        predictor(path, ["a", "a"])


def test_experiment_predictor_is_checkpoint_free_and_trained_methods_need_one():
    predictor = ramlico.load_predictor("clip_zeroshot_demo", device="cpu")
    pred = predictor(np.zeros((50, 70, 3), np.uint8), ["red circle", "blue star"])[0]
    assert pred.size == (70, 50) and pred.heatmaps.shape[0] == 2 and pred.heatmaps.ndim == 3
    assert not predictor.calibration.fitted and list(pred.thresholds) == [0.5, 0.5]
    with pytest.raises(ValueError, match="trained method: pass its checkpoint"):
        ramlico.load_predictor("ram_demo")
    with pytest.raises(FileNotFoundError, match="neither a checkpoint file nor an experiment"):
        ramlico.load_predictor("no_such_thing")
