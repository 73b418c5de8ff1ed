"""Single-label transforms: train augmentation presets and their evaluation side (LICO's data).

Every transform takes an image as stored (any PIL mode), converts it to RGB, and returns a
``(3, S, S)`` float32 normalised tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from ramlico.data.preprocess import ConvertRGB

__all__ = [
    "CLASSIFICATION_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_classification_transform",
]

CLASSIFICATION_PRESETS = ("cifar", "svhn", "imagenet", "basic", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AddNoise(torch.nn.Module):
    """``x + N(0, std^2)`` (LICO's noise on the images of a limited-label subset)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x)


def build_classification_transform(
    preset: str,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    noise_std: float = 0.0,
) -> Callable[[Any], torch.Tensor]:
    """Image as stored -> ``(3, S, S)`` float32 normalised tensor.

    Presets (train side; the eval side is resize + normalise, ``imagenet``: resize ``S/0.875``
    + centre crop ``S``):

    * ``cifar``: random crop ``S`` with 4 px zero padding + horizontal flip (LICO code);
    * ``svhn``: random crop with padding, no flip (digits are not flip-invariant);
    * ``imagenet``: RandomResizedCrop(S) + horizontal flip;
    * ``basic``: resize + horizontal flip;  ``none``: the eval transform.

    ``noise_std > 0`` adds ``N(0, noise_std^2)`` noise after normalisation (train only).

    Raises:
        ValueError: an unknown preset.
    """
    if preset not in CLASSIFICATION_PRESETS:
        raise ValueError(f"unknown train preset {preset!r}; choose one of {CLASSIFICATION_PRESETS}")
    head = [ConvertRGB(), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    tail: list[Any] = [v2.Normalize(list(mean), list(std))]
    if preset == "imagenet" and not train:
        body: list[Any] = [v2.Resize(round(image_size / 0.875), antialias=True),
                           v2.CenterCrop(image_size)]  # fmt: skip
    elif not train or preset == "none":
        body = [v2.Resize((image_size, image_size), antialias=True)]
    elif preset in ("cifar", "svhn"):
        body = [v2.Resize((image_size, image_size), antialias=True),
                v2.RandomCrop(image_size, padding=4)]  # fmt: skip
        if preset == "cifar":
            body.append(v2.RandomHorizontalFlip())
    elif preset == "imagenet":
        body = [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        body = [v2.Resize((image_size, image_size), antialias=True), v2.RandomHorizontalFlip()]
    if train and noise_std > 0:
        tail.append(AddNoise(noise_std))
    return v2.Compose(head + body + tail)
