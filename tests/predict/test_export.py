"""ONNX export of RAM inference, checked in onnxruntime against PyTorch."""

from __future__ import annotations

import json

import pytest
import torch
from drawing import LABELS, draw_images

from ramlico.export import RAMInference, export_onnx, main, onnx_max_abs_diff
from ramlico.predict.build import build_from_checkpoint
from ramlico.predict.images import load_image
from ramlico.predict.predictor import load_predictor

pytest.importorskip("onnxruntime")


def test_onnx_matches_pytorch_within_1e_4(ram_run, tmp_path):
    built = build_from_checkpoint(ram_run[0])
    module = RAMInference(built.model, LABELS, max_iter=100)
    path = export_onnx(module, tmp_path / "ram.onnx", image_size=64)
    predictor = load_predictor(ram_run[0], device="cpu")
    drawn = [p for p, _ in draw_images(tmp_path / "imgs", 3, seed=31)]
    images = torch.stack([predictor.transform(load_image(p)) for p in drawn])
    for batch in (images[:1], images):  # the batch dimension is dynamic
        diff = onnx_max_abs_diff(path, module, batch)
        assert max(diff.values()) <= 1e-4, diff
    scores, logits, heatmaps = module(images)
    assert scores.shape == logits.shape == (3, len(LABELS))
    side = 64 // built.model.backbone.model.visual.patch_size[0]  # the patch grid
    assert heatmaps.shape == (3, len(LABELS), side, side)
    # 100 fixed iterations vs the tolerance stop of evaluation: the same ranking scores
    ref = built.model.label_scores(images, LABELS)
    torch.testing.assert_close(scores, ref.scores, atol=1e-3, rtol=0)


def test_command_line_writes_the_model_and_its_sidecar(ram_run, tmp_path):
    out = tmp_path / "m.onnx"
    main([str(ram_run[0]), "--labels", "red circle,blue star", "--out", str(out),
          "--max-iter", "20"])  # fmt: skip
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert out.stat().st_size > 0 and side["labels"] == ["red circle", "blue star"]
    assert side["image_size"] == 64 and side["kcot_iterations"] == 20
    assert side["calibration"]["fitted"] and len(side["mean"]) == 3
