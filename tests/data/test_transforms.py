"""ramlico.data.transforms: eval / train pipelines  and their building blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ramlico.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    NoiseErasing,
    RamAugment,
    RandomShift,
    affine_transform,
    build_eval_transform,
    build_train_transform,
)

ZERO = dict(
    flip_p=0.0, aug_p=0.0, noise_p=0.0, multiply_p=0.0, shift_p=0.0, erase_p=0.0,
    interpolation="bilinear",
)  # fmt: skip


def _image(seed: int, w: int = 45, h: int = 30) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_eval_transform_values():
    out = build_eval_transform(16)(Image.new("RGB", (40, 24), (255, 0, 51)))
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    expected = [(v - m) / s for v, m, s in zip((1.0, 0.0, 0.2), CLIP_MEAN, CLIP_STD, strict=True)]
    # a uniform image stays uniform under resizing; 1e-5 covers float32 rounding of 51/255
    assert torch.allclose(out, torch.tensor(expected)[:, None, None].expand(3, 16, 16), atol=1e-5)
    half = build_eval_transform(8, mean=(0.5,) * 3, std=(0.5,) * 3)(Image.new("RGB", (8, 8)))
    assert torch.equal(half, torch.full((3, 8, 8), -1.0))


@pytest.mark.parametrize("preset", ["ram", "basic"])
def test_train_transform_shapes_and_ranges(preset: str):
    torch.manual_seed(0)
    transform = build_train_transform(24, preset=preset)
    lowest = min(-m / s for m, s in zip(CLIP_MEAN, CLIP_STD, strict=True))
    highest = max((1 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD, strict=True))
    for seed in range(6):
        out = transform(_image(seed))
        assert out.shape == (3, 24, 24) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        if preset == "basic":  # no erasing noise: values stay in the normalised pixel range
            assert lowest - 1e-5 <= out.min() and out.max() <= highest + 1e-5


@pytest.mark.parametrize("preset", ["ram", "basic"])
def test_zero_probabilities_equal_eval(preset: str):
    train = build_train_transform(20, preset=preset, **ZERO)
    evaluate = build_eval_transform(20)
    for seed in range(4):
        image = _image(seed, w=33 + seed, h=27)
        assert torch.equal(train(image), evaluate(image))


def test_flip_only_equals_mirrored_eval():
    train = build_train_transform(16, **{**ZERO, "flip_p": 1.0})
    image = _image(1)
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert torch.allclose(train(image), build_eval_transform(16)(mirrored), atol=1e-6)


def test_default_train_transform_is_random():
    torch.manual_seed(0)
    transform = build_train_transform(16)
    image = _image(2)
    outs = [transform(image) for _ in range(3)]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


def test_default_pad_scales_with_image_size():
    def pad_of(transform) -> int:
        shifts = [m for t in transform.transforms for m in getattr(t, "transforms", [t])]
        return next(m.pad for m in shifts if isinstance(m, RandomShift))

    assert pad_of(build_train_transform(224)) == 10
    assert pad_of(build_train_transform(64)) == 3  # round(10 * 64 / 224)
    assert pad_of(build_train_transform(64, pad=0)) == 0


def test_random_shift_is_a_zero_filled_translation():
    torch.manual_seed(0)
    img = torch.rand(3, 9, 11) + 1.0  # strictly positive, so the zero border is identifiable
    out = RandomShift(2)(img)
    padded = torch.nn.functional.pad(img, [2, 2, 2, 2])
    matches = [
        (dy, dx)
        for dy in range(5)
        for dx in range(5)
        if torch.equal(out, padded[:, dy : dy + 9, dx : dx + 11])
    ]
    assert len(matches) == 1
    assert torch.equal(RandomShift(0)(img), img)


def test_noise_erasing_one_box():
    torch.manual_seed(0)
    img = torch.zeros(3, 40, 50)
    for _ in range(5):
        out = NoiseErasing(p=1.0)(img)
        changed = (out != 0).any(0)
        rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        # exactly one filled rectangle whose area is 2%-33% of the image (+- rounding of the sides)
        assert changed.sum() == box
        assert 0.015 * 2000 <= box <= 0.36 * 2000
    assert torch.equal(NoiseErasing(p=0.0)(img), img)


def test_affine_transform():
    img = torch.zeros(1, 8, 10)
    img[0, 3, 4] = 1.0
    assert torch.allclose(affine_transform(img, (1.0, 1.0), (0.0, 0.0), 0.0), img, atol=1e-5)
    right = affine_transform(img, (1.0, 1.0), (0.2, 0.0), 0.0)  # 0.2 * 10 = 2 px right
    assert right[0, 3, 6] == pytest.approx(1.0, abs=1e-4) and right.sum() == pytest.approx(1.0)
    down = affine_transform(img, (1.0, 1.0), (0.0, 0.25), 0.0)  # 0.25 * 8 = 2 px down
    assert down[0, 5, 4] == pytest.approx(1.0, abs=1e-4)
    # 90 degrees maps the centre-relative offset (dx, dy) = (-0.5, -0.5) to (0.5, -0.5)
    square = torch.zeros(1, 4, 4)
    square[0, 1, 1] = 1.0
    assert affine_transform(square, (1.0, 1.0), (0.0, 0.0), 90.0)[0, 1, 2] == pytest.approx(1.0)


def test_ram_augment_stays_in_unit_range():
    torch.manual_seed(0)
    augment = RamAugment(p=1.0, per_channel_p=0.5)
    img = torch.rand(3, 20, 30)
    for _ in range(5):
        out = augment(img)
        assert out.shape == img.shape and 0.0 <= out.min() and out.max() <= 1.0
    identity = RamAugment(p=0.0, noise_p=0.0, multiply_p=0.0)
    assert torch.equal(identity(img), img)


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"unknown train preset 'strong'; allowed: \['ram', 'basic'\]"
    ):
        build_train_transform(32, preset="strong")
    with pytest.raises(ValueError, match=r"flip_p must be a probability in \[0, 1\], got 1.5"):
        build_train_transform(32, flip_p=1.5)
    with pytest.raises(ValueError, match="aug_p|p must be a probability"):
        build_train_transform(32, aug_p=-0.1)
    with pytest.raises(ValueError, match="unknown interpolation 'nearest'"):
        build_eval_transform(32, interpolation="nearest")
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        build_eval_transform(32, mean=(0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="pad must be >= 0"):
        build_train_transform(32, pad=-1)
