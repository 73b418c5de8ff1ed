"""Model-owned evaluation preprocessing, split into a PIL half (workers) and a tensor half (device).

A backbone's own evaluation transform (open_clip's ``image_transform``, timm's
``create_transform``) ends with ``ToTensor`` and ``Normalize``. :class:`ImagePreprocess` keeps
that transform and splits it there::

    full(image)  = Normalize(ToTensor(geometry(image)))            the backbone's transform
    geometry     = everything before ToTensor (resize, crop, mode conversion), on PIL images
    to_uint8     = the geometry's output as a (3, S, S) uint8 tensor (4x smaller than float)
    normalize(x) = (x / 255 - mean) / std                          in the model's float dtype

``normalize(to_uint8(image))`` equals ``full(image)`` bit for bit in float32 (the same operations
in the same order as torchvision's ``to_tensor`` + ``normalize``), so views can travel from the
loader workers as uint8 and be normalised on the accelerator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as tv

__all__ = ["ConvertRGB", "ImagePreprocess", "pil_to_uint8"]

Tensor = torch.Tensor


class ConvertRGB:
    """``image.convert("RGB")`` as a (picklable) transform step; tensors pass unchanged."""

    def __call__(self, image: Any) -> Any:
        return image.convert("RGB") if isinstance(image, Image.Image) else image

    def __repr__(self) -> str:
        return "ConvertRGB()"


def _floats(values: Any) -> tuple[float, ...]:
    seq = values.tolist() if isinstance(values, Tensor) else values
    return tuple(float(v) for v in seq)


def pil_to_uint8(image: Image.Image) -> Tensor:
    """``(3, H, W)`` uint8 tensor of an RGB PIL image (a copy, like ``to_tensor`` before /255)."""
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode!r}; convert it first")
    return (
        torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()
    )


@dataclass
class ImagePreprocess:
    """A backbone's evaluation transform, usable whole or in its PIL and tensor halves.

    Attributes:
        full: the backbone's own transform, PIL image -> ``(3, S, S)`` float tensor.
        geometry: the steps before ``ToTensor`` (PIL -> RGB PIL of size ``S x S``).
        mean, std: the ``Normalize`` statistics.
        size: ``S``, the model input side.
    """

    full: Callable[[Image.Image], Tensor]
    geometry: Callable[[Image.Image], Image.Image]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int

    @classmethod
    def from_transform(cls, transform: tv.Compose, size: int) -> ImagePreprocess:
        """Split a ``Compose([..., ToTensor, Normalize])`` (open_clip's and timm's eval form).

        Raises:
            TypeError: the transform does not end with ``ToTensor`` and ``Normalize``.
        """
        steps = list(getattr(transform, "transforms", []))
        if len(steps) < 2 or not (
            isinstance(steps[-2], tv.ToTensor) and isinstance(steps[-1], tv.Normalize)
        ):
            raise TypeError(
                f"the backbone's eval transform must end with ToTensor and Normalize, got {steps}; "
                "wrap other transforms in ImagePreprocess yourself"
            )
        norm = steps[-1]
        return cls(transform, tv.Compose(steps[:-2]), _floats(norm.mean), _floats(norm.std), size)

    def __call__(self, image: Image.Image) -> Tensor:
        """The backbone's transform: PIL image (any mode) -> ``(3, S, S)`` float32."""
        return self.full(image)

    def to_uint8(self, image: Image.Image) -> Tensor:
        """``geometry`` then ``(3, S, S)`` uint8 (the pixels ``full`` would normalise)."""
        out = self.geometry(image)
        if not isinstance(out, Image.Image):
            raise TypeError(f"the geometry steps must return a PIL image, got {type(out).__name__}")
        return pil_to_uint8(out.convert("RGB"))

    def normalize(self, pixels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """``(..., 3, H, W)`` uint8 -> normalised floats ``(x / 255 - mean) / std`` in ``dtype``."""
        x = pixels.to(dtype).div(255)
        mean = torch.tensor(self.mean, dtype=dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=dtype, device=x.device).view(-1, 1, 1)
        return x.sub(mean).div(std)

    def describe(self) -> str:
        """One line for the logs, e.g. ``Resize(224, bicubic) -> CenterCrop(224) -> ...``."""
        steps: Sequence[Any] = getattr(self.full, "transforms", [self.full])
        return " -> ".join(repr(s).replace("\n", " ") for s in steps)
