"""Model-owned preprocessing: the backbones' own transforms, their uint8 half, and its adoption."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision import transforms as tv

from ramlico.backbones import TimmBackbone
from ramlico.data import ClassificationDataModule, make_generated_classification
from ramlico.data.preprocess import ImagePreprocess
from ramlico.methods import CLIPZeroShot


def _image(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(w * h)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def test_timm_preprocess_is_create_transform_at_the_model_size():
    backbone = TimmBackbone("vit_tiny_patch16_224", img_size=64)
    pre = backbone.preprocess()
    cfg = timm.data.resolve_model_data_config(backbone.model)
    cfg["input_size"] = (3, 64, 64)
    reference = timm.data.create_transform(**cfg, is_training=False)
    img = _image(90, 70)
    assert pre.size == 64 and pre(img).shape == (3, 64, 64)
    assert torch.equal(pre(img), reference(img))
    assert torch.equal(pre.normalize(pre.to_uint8(img)), pre(img))
    assert pre(img.convert("L")).shape == (3, 64, 64)  # converted to RGB first


def test_split_needs_to_tensor_and_normalize_last():
    with pytest.raises(TypeError, match="must end with ToTensor and Normalize"):
        ImagePreprocess.from_transform(tv.Compose([tv.Resize(8), tv.ToTensor()]), 8)


def test_clip_input_size_mismatch_is_a_clear_error(tiny_clip):
    with pytest.raises(ValueError, match=r"takes \(B, 3, 64, 64\) images.*data.image_size=64"):
        tiny_clip.embed_image(torch.zeros(1, 3, 224, 224))


def test_single_label_data_adopts_the_zero_shot_models_transform(tiny_clip, tmp_path):
    """data.image_size=224 with the 64 px tiny CLIP: the backbone's transform is used, no crash."""
    root = make_generated_classification(tmp_path / "g", n_per_class=1, image_size=48)
    dm = ClassificationDataModule(source="folder", root=str(root), image_size=224, batch_size=8)
    model = CLIPZeroShot(tiny_clip, ks=(1,))
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert isinstance(dm.test_set.transform, ImagePreprocess) and dm.test_set.transform.size == 64
    x, _, index = dm.test_set[3]
    assert x.shape == (3, 64, 64) and index == 3
    assert 0.0 <= metrics["test/test/top1"] <= 100.0
