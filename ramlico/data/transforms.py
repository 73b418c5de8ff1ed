"""Image transforms: the evaluation transform and RAM's training augmentation (docs/ram.md).

Both pipelines take a PIL image (or a (3, H, W) uint8 tensor) and return a (3, S, S) float32 tensor,
S = ``image_size``. They share the same first and last steps, so the training transform with every
probability at 0 (and the same interpolation) equals the evaluation transform exactly:

    eval : to float [0, 1] -> resize S x S -> normalise
    train: to float [0, 1] -> flip -> RAM augmentations (random order) -> resize S x S
           -> pad-and-crop shift -> normalise -> random erasing

Randomness uses torch's global generator. Training loaders of ``MultiLabelDataModule`` wrap the
dataset in ``ramlico.data.sampling.SeededSamples``, which seeds it per image from (seed, epoch,
index), so augmentations do not depend on the loading order, the number of workers or a resume.
Parity with RAM's imgaug pipeline is statistical, not bitwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
HALF_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)  # RAM's released configs: mean = std = 0.5
HALF_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
INTERPOLATIONS = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}
PRESETS = ("ram", "basic")
REFERENCE_SIZE = 224  # RAM's pad of 10 px refers to 224 x 224 inputs


def _u(low: float, high: float) -> float:
    return low + (high - low) * torch.rand(()).item()


def _hit(p: float) -> bool:
    return p > 0 and torch.rand(()).item() < p


class RamAugment(nn.Module):
    """RAM's photometric and geometric augmentations in random order, on (3, H, W) floats in [0, 1].

    Each call shuffles six steps:
      * crop 0-10% per side and resize back (p);
      * Gaussian blur, sigma ~ U[0, 0.2] px (p);
      * contrast x U[0.75, 1.25] about 0.5 (p);
      * additive Gaussian noise, std ~ U[0, noise_std_max] (noise_p;
        per channel w.p. per_channel_p);
      * multiply by U[multiply_range] (multiply_p; per channel w.p. per_channel_p);
      * affine: per-axis scale U[0.9, 1.1], translation U[-10%, 10%], rotation U[-10, 10] degrees,
        black fill (p).
    Output is clamped to [0, 1].

    Args:
        p: probability of each of crop, blur, contrast and affine (RAM: 0.2).
        noise_p, multiply_p: probability of the noise and multiply steps (RAM: 1, "always").
        per_channel_p: probability that noise / multiply draw one value per channel (RAM: 0.2).
        noise_std_max: upper bound of the noise std, in [0, 1] pixel units (RAM: 0.015).
        multiply_range: (low, high) of the multiplicative factor (RAM: (0.9, 1.1)).
    """

    def __init__(
        self,
        p: float = 0.2,
        noise_p: float = 1.0,
        multiply_p: float = 1.0,
        per_channel_p: float = 0.2,
        noise_std_max: float = 0.015,
        multiply_range: tuple[float, float] = (0.9, 1.1),
    ) -> None:
        super().__init__()
        for name, value in (
            ("p", p),
            ("noise_p", noise_p),
            ("multiply_p", multiply_p),
            ("per_channel_p", per_channel_p),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if noise_std_max < 0 or multiply_range[0] > multiply_range[1]:
            raise ValueError(
                f"need noise_std_max >= 0 and multiply_range low <= high, "
                f"got {noise_std_max} and {multiply_range}"
            )
        self.p, self.noise_p, self.multiply_p = p, noise_p, multiply_p
        self.per_channel_p = per_channel_p
        self.noise_std_max = noise_std_max
        self.multiply_range = (float(multiply_range[0]), float(multiply_range[1]))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        steps = [
            (self.p, self._crop),
            (self.p, self._blur),
            (self.p, self._contrast),
            (self.noise_p, self._noise),
            (self.multiply_p, self._multiply),
            (self.p, self._affine),
        ]
        for k in torch.randperm(len(steps)).tolist():
            prob, step = steps[k]
            if _hit(prob):
                img = step(img)
        return img

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        top, bottom = int(_u(0, 0.1) * h), int(_u(0, 0.1) * h)
        left, right = int(_u(0, 0.1) * w), int(_u(0, 0.1) * w)
        cropped = img[..., top : h - bottom, left : w - right]
        return TF.resize(cropped, [h, w], antialias=True).clamp_(0, 1)

    def _blur(self, img: torch.Tensor) -> torch.Tensor:
        sigma = _u(0.0, 0.2)
        if sigma < 1e-3:  # a zero-width kernel is the identity
            return img
        return TF.gaussian_blur(img, kernel_size=[3, 3], sigma=[sigma, sigma])

    def _contrast(self, img: torch.Tensor) -> torch.Tensor:
        return (0.5 + _u(0.75, 1.25) * (img - 0.5)).clamp_(0, 1)

    def _noise(self, img: torch.Tensor) -> torch.Tensor:
        std = _u(0.0, self.noise_std_max)
        channels = img.shape[0] if _hit(self.per_channel_p) else 1
        noise = torch.randn((channels, *img.shape[-2:]), dtype=img.dtype) * std
        return (img + noise).clamp_(0, 1)

    def _multiply(self, img: torch.Tensor) -> torch.Tensor:
        low, high = self.multiply_range
        channels = img.shape[0] if _hit(self.per_channel_p) else 1
        factor = low + (high - low) * torch.rand((channels, 1, 1), dtype=img.dtype)
        return (img * factor).clamp_(0, 1)

    def _affine(self, img: torch.Tensor) -> torch.Tensor:
        scale = (_u(0.9, 1.1), _u(0.9, 1.1))
        translate = (_u(-0.1, 0.1), _u(-0.1, 0.1))
        return affine_transform(img, scale, translate, _u(-10.0, 10.0)).clamp_(0, 1)


def affine_transform(
    img: torch.Tensor,
    scale: tuple[float, float],
    translate: tuple[float, float],
    degrees: float,
) -> torch.Tensor:
    """Scale (per axis), rotate and translate a (C, H, W) image about its centre; zero fill.

    The forward map in pixel units, centre at the origin, is x' = R(degrees) diag(scale) x + t with
    t = (translate[0] * W, translate[1] * H); grid_sample needs its inverse in normalised
    coordinates x_n = 2 x / (W, H). Bilinear sampling.
    """
    h, w = img.shape[-2:]
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    sx, sy = scale
    fwd = torch.tensor([[cos * sx, -sin * sy], [sin * sx, cos * sy]], dtype=torch.float64)
    to_norm = torch.diag(torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64))
    inv = to_norm @ torch.linalg.inv(fwd) @ torch.linalg.inv(to_norm)
    shift = -inv @ torch.tensor([2.0 * translate[0], 2.0 * translate[1]], dtype=torch.float64)
    matrix = torch.cat([inv, shift[:, None]], dim=1).to(img.dtype)[None]
    grid = F.affine_grid(matrix, [1, *img.shape], align_corners=False)
    out = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0]


class Clamp01(nn.Module):
    """Clamp to [0, 1] (bicubic resizing overshoots; uint8 pipelines clamp implicitly)."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.clamp(0, 1)


class RandomShift(nn.Module):
    """Zero-pad ``pad`` px per side and crop back at a random offset (a shift of up to +-pad px)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        if pad < 0:
            raise ValueError(f"pad must be >= 0 pixels, got {pad}")
        self.pad = pad

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.pad == 0:
            return img
        h, w = img.shape[-2:]
        padded = F.pad(img, [self.pad] * 4)
        top, left = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        return padded[..., top : top + h, left : left + w]


class NoiseErasing(nn.Module):
    """timm-style random erasing: one box filled with per-pixel standard-normal noise.

    With probability p, up to 10 attempts draw an area fraction U[min_area, max_area] and a
    log-uniform aspect ratio in [min_aspect, 1/min_aspect]; the first box that fits is erased.
    Applied after normalisation, so the noise is in normalised units.
    """

    def __init__(
        self,
        p: float = 0.5,
        min_area: float = 0.02,
        max_area: float = 1 / 3,
        min_aspect: float = 0.3,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0 or not 0 < min_area <= max_area <= 1 or not 0 < min_aspect <= 1:
            raise ValueError(
                "need 0 <= p <= 1, 0 < min_area <= max_area <= 1 and 0 < min_aspect <= 1, "
                f"got p={p}, min_area={min_area}, max_area={max_area}, min_aspect={min_aspect}"
            )
        self.p, self.min_area, self.max_area = p, min_area, max_area
        self.log_aspect = (math.log(min_aspect), -math.log(min_aspect))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if not _hit(self.p):
            return img
        c, h, w = img.shape
        for _ in range(10):
            area = _u(self.min_area, self.max_area) * h * w
            aspect = math.exp(_u(*self.log_aspect))
            bh, bw = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < bh < h and 0 < bw < w:
                top = int(torch.randint(0, h - bh + 1, ()).item())
                left = int(torch.randint(0, w - bw + 1, ()).item())
                img = img.clone()
                img[:, top : top + bh, left : left + bw] = torch.randn((c, bh, bw), dtype=img.dtype)
                break
        return img


def _check(
    image_size: int, mean: Sequence[float], std: Sequence[float], interpolation: str
) -> None:
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 values, std > 0; got mean={mean}, std={std}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {interpolation!r}; allowed: {sorted(INTERPOLATIONS)}"
        )


def _head() -> list[nn.Module]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def _resize(image_size: int, interpolation: str) -> nn.Module:
    return v2.Resize(
        [image_size, image_size], interpolation=INTERPOLATIONS[interpolation], antialias=True
    )


def build_eval_transform(
    image_size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    interpolation: str = "bilinear",
) -> v2.Compose:
    """Test transform: resize to image_size x image_size (aspect not kept), to float, normalise.

    Returns a callable: PIL image or (3, H, W) uint8 tensor -> (3, image_size, image_size) float32.
    """
    _check(image_size, mean, std, interpolation)
    return v2.Compose(
        [
            *_head(),
            _resize(image_size, interpolation),
            v2.Normalize(list(mean), list(std)),
            v2.ToPureTensor(),
        ]
    )


def build_train_transform(
    image_size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    preset: str = "ram",
    flip_p: float = 0.5,
    aug_p: float = 0.2,
    noise_p: float = 1.0,
    multiply_p: float = 1.0,
    per_channel_p: float = 0.2,
    shift_p: float = 1.0,
    erase_p: float = 0.5,
    pad: int | None = None,
    interpolation: str = "bicubic",
) -> v2.Compose:
    """Training transform (docs/ram.md): "ram" is the full list, "basic" flip + resize + shift.

    Steps: horizontal flip (flip_p; RAM's two p=0.5 flips equal one), ``RamAugment`` (ram only:
    aug_p, noise_p, multiply_p, per_channel_p), resize to image_size x image_size (interpolation),
    ``RandomShift`` by up to ``pad`` px (shift_p; default pad = round(10 * image_size / 224)),
    normalise, ``NoiseErasing`` (ram only, erase_p).

    Returns a callable: PIL image or (3, H, W) uint8 tensor -> (3, image_size, image_size) float32.

    Raises:
        ValueError: unknown preset or interpolation, a probability outside [0, 1], pad < 0.
    """
    _check(image_size, mean, std, interpolation)
    if preset not in PRESETS:
        raise ValueError(f"unknown train preset {preset!r}; allowed: {list(PRESETS)}")
    for name, value in (("flip_p", flip_p), ("shift_p", shift_p), ("erase_p", erase_p)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    pad = round(10 * image_size / REFERENCE_SIZE) if pad is None else pad
    steps: list[nn.Module] = [*_head(), v2.RandomHorizontalFlip(p=flip_p)]
    if preset == "ram":
        steps.append(RamAugment(aug_p, noise_p, multiply_p, per_channel_p))
    steps += [
        _resize(image_size, interpolation),
        Clamp01(),
        v2.RandomApply([RandomShift(pad)], p=shift_p),
        v2.Normalize(list(mean), list(std)),
    ]
    if preset == "ram":
        steps.append(NoiseErasing(p=erase_p))
    steps.append(v2.ToPureTensor())
    return v2.Compose(steps)
