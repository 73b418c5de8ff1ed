"""LaZSL views: the global view and the crops of the original image (``pil``, ``tensor``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ramlico.data.preprocess import pil_to_uint8
from ramlico.zeroshot import sample_crops
from ramlico.zeroshot.crops import CropViews, resize_crops


def natural_image(width: int, height: int, seed: int) -> Image.Image:
    """A colour image with natural-image statistics: 1/f amplitude spectrum, random phase."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(width, height))
    base = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((height, width)))))
    chans = [base + 0.4 * np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random(base.shape))))
             for _ in range(3)]  # correlated channels, like real colour images  # fmt: skip
    img = np.stack(chans, -1)
    img = (img - img.min()) / (img.max() - img.min())
    return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def preprocess(tiny_clip):
    return tiny_clip.preprocess()


def test_backbone_preprocess_is_open_clips_transform_and_uint8_half_is_exact(tiny_clip, preprocess):
    import open_clip

    _, _, reference = open_clip.create_model_and_transforms("ramlico-tiny-ViT", pretrained=None)
    img = natural_image(90, 50, seed=0)
    torch.testing.assert_close(preprocess(img), reference(img), rtol=0, atol=0)
    # shorter side resized to 64, centre crop 64 x 64, bicubic (not squashed)
    assert preprocess.size == 64 == tiny_clip.image_size
    assert torch.equal(preprocess.normalize(preprocess.to_uint8(img)), preprocess(img))


def test_pil_views_are_the_literal_pil_crops_pixel_for_pixel(preprocess):
    img = natural_image(97, 143, seed=1)
    views = CropViews(preprocess, num_crops=5, scale=(0.6, 0.9), seed=3, mode="pil")(img, 11)
    boxes = sample_crops(97, 143, 5, scale=(0.6, 0.9), seed=3, index=11)
    assert torch.equal(views.boxes, boxes) and views.views.shape == (6, 3, 64, 64)
    assert views.views.dtype == torch.uint8
    # global view = the backbone's transform of the whole image; crop i = transform(img.crop(box))
    assert torch.equal(preprocess.normalize(views.views[0]), preprocess(img))
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        literal = preprocess(img.crop((x1, y1, x2, y2)))
        assert torch.equal(preprocess.normalize(views.views[i + 1]), literal)
    # boxes are measured on the original: sides floor(gamma * min(W, H)), gamma in [0.6, 0.9]
    sides = boxes[:, 2] - boxes[:, 0]
    assert torch.equal(sides, boxes[:, 3] - boxes[:, 1])
    assert bool(((sides >= int(0.6 * 97)) & (sides <= int(0.9 * 97))).all())
    assert bool((boxes[:, 2] <= 97).all() and (boxes[:, 3] <= 143).all())


def test_palette_and_grey_images_follow_the_reference_mode_handling(preprocess):
    rgb = natural_image(80, 60, seed=2)
    for img in (rgb.convert("L"), rgb.convert("P")):
        views = CropViews(preprocess, num_crops=2, seed=1)(img, 0)
        box = tuple(views.boxes[0].tolist())
        # RGB conversion after the crop and resize, as in the reference (open_clip's steps)
        assert torch.equal(preprocess.normalize(views.views[1]), preprocess(img.crop(box)))


def test_views_are_seeded_by_dataset_index_only(preprocess):
    img = natural_image(70, 90, seed=3)
    crop = CropViews(preprocess, num_crops=4, seed=5)
    a, b = crop(img, 2), crop(img, 9)
    assert torch.equal(crop(img, 2).views, a.views)  # any call order gives the same views
    assert not torch.equal(a.boxes, b.boxes)
    assert not torch.equal(CropViews(preprocess, num_crops=4, seed=6)(img, 2).boxes, a.boxes)


def test_tensor_mode_agrees_with_pil_mode(tiny_clip, preprocess):
    """``tensor`` crops (torch bicubic antialias) vs ``pil`` crops, on natural-statistics images.

    Measured over these 6 images x 8 crops: pixel cosine >= 0.999995, tiny-CLIP embedding cosine
    >= 0.9999997, at most 1 grey level apart; the bounds below leave >= 20x margin on 1 - cosine.
    """
    pixel_cos, emb_cos = [], []
    for seed, (w, h) in enumerate(
        [(160, 120), (97, 143), (300, 200), (64, 64), (211, 77), (90, 90)]
    ):
        img = natural_image(w, h, seed)
        pil = CropViews(preprocess, num_crops=8, seed=1, mode="pil")(img, seed)
        ten = CropViews(preprocess, num_crops=8, seed=1, mode="tensor")(img, seed)
        assert torch.equal(pil.boxes, ten.boxes) and torch.equal(pil.views[0], ten.views[0])
        assert torch.equal(ten.original, pil_to_uint8(img))
        crops = resize_crops(ten.original, ten.boxes, preprocess.size)
        a, b = preprocess.normalize(pil.views[1:]), preprocess.normalize(crops)
        pixel_cos.append(F.cosine_similarity(a.flatten(1), b.flatten(1)))
        with torch.no_grad():
            emb_cos.append(F.cosine_similarity(tiny_clip.embed_image(a), tiny_clip.embed_image(b)))
        assert (pil.views[1:].int() - crops.int()).abs().max() <= 1  # grey levels
    assert torch.cat(pixel_cos).min() > 0.9999
    assert torch.cat(emb_cos).min() > 0.99999
    assert torch.cat(pixel_cos).min() < 1.0  # the two modes do differ (the test can fail)


def test_bad_crop_mode():
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        CropViews(None, mode="gpu")  # type: ignore[arg-type]
