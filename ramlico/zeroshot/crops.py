"""LaZSL's image side: the global view and the seeded crops, cut from the decoded original image.

Per image (LaZSL Eq. 2 and the reference code's crop loader): the global view is the backbone's own
preprocessing of the whole image; ``N`` square crops of side ``floor(gamma * min(W, H))``,
``gamma ~ U(alpha, beta)``, are placed uniformly on the **original** image, with boxes drawn by
:func:`ramlico.zeroshot.sample_crops` from ``(seed, dataset index)``. Two crop modes:

* ``pil`` (parity, default): in the loader worker, ``preprocess(image.crop(box))`` per crop with
  PIL, exactly the reference's pipeline. Views travel as uint8 ``(1 + N, 3, S, S)`` (global view
  first) and are normalised on the device (:meth:`ramlico.data.preprocess.ImagePreprocess.
  normalize`), bit-identical to the float transform.
* ``tensor`` (fast): the worker sends the global view and the full-resolution decoded image
  (uint8 ``(3, H, W)``); :func:`resize_crops` cuts and resizes all crops on the model's device
  with torchvision's bicubic antialiased ``resized_crop``. The pixels differ slightly from PIL's
  (the tests bound the difference).

:class:`CropViews` is the per-sample transform (``uses_index = True``: it needs the dataset index
for the seeds); it returns :class:`LaZSLViews`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ramlico.data.preprocess import ImagePreprocess, pil_to_uint8
from ramlico.zeroshot.lazsl import sample_crops

__all__ = ["CROP_MODES", "CropViews", "LaZSLViews", "resize_crops"]

Tensor = torch.Tensor
CROP_MODES = ("pil", "tensor")


class LaZSLViews(NamedTuple):
    """What the loader hands LaZSL for one image (or, collated, for a batch).

    Attributes:
        views: uint8 ``(1 + N, 3, S, S)`` global view then crops (``pil``), or ``(1, 3, S, S)``
            the global view only (``tensor``); collated ``(B, ...)``.
        original: ``tensor`` mode: the decoded image, uint8 ``(3, H, W)`` (collated: a list, the
            sizes differ); ``pil`` mode: an empty ``(0,)`` placeholder.
        boxes: ``(N, 4)`` int64 crop boxes ``(x1, y1, x2, y2)`` on the original image (exclusive
            ends); collated ``(B, N, 4)``.
    """

    views: Tensor
    original: Tensor | list[Tensor]
    boxes: Tensor


class CropViews:
    """Per-sample LaZSL transform: decoded PIL image + dataset index -> :class:`LaZSLViews`.

    Args:
        preprocess: the backbone's :class:`~ramlico.data.preprocess.ImagePreprocess`.
        num_crops: ``N``.
        scale: ``(alpha, beta)`` crop-side range as a fraction of the short side.
        seed: the global crop seed (mixed with the dataset index).
        mode: ``"pil"`` or ``"tensor"`` (module docstring).
    """

    uses_index = True

    def __init__(
        self,
        preprocess: ImagePreprocess,
        num_crops: int = 90,
        scale: Sequence[float] = (0.6, 0.9),
        seed: int = 1,
        mode: str = "pil",
    ) -> None:
        if mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {mode!r}")
        self.preprocess = preprocess
        self.num_crops = int(num_crops)
        self.scale = (float(scale[0]), float(scale[1]))
        self.seed = int(seed)
        self.mode = mode

    def boxes(self, width: int, height: int, index: int) -> Tensor:
        """``(N, 4)`` boxes of the image with dataset index ``index`` (original pixels)."""
        return sample_crops(
            width, height, self.num_crops, scale=self.scale, seed=self.seed, index=index
        )

    def __call__(self, image: Image.Image, index: int) -> LaZSLViews:
        boxes = self.boxes(image.width, image.height, index)
        glob = self.preprocess.to_uint8(image)
        if self.mode == "tensor":
            return LaZSLViews(glob[None], pil_to_uint8(image.convert("RGB")), boxes)
        crops = [self.preprocess.to_uint8(image.crop(tuple(b))) for b in boxes.tolist()]
        return LaZSLViews(torch.stack([glob, *crops]), torch.zeros(0, dtype=torch.uint8), boxes)

    def __repr__(self) -> str:
        return (
            f"CropViews(num_crops={self.num_crops}, scale={self.scale}, seed={self.seed}, "
            f"mode={self.mode!r}, preprocess={self.preprocess.describe()})"
        )


def resize_crops(original: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Cut ``boxes`` from one image and resize each to ``size x size`` (``tensor`` mode).

    Bicubic with antialiasing (torchvision ``resized_crop`` on uint8: rounded and clamped), on
    ``original``'s device.

    Args:
        original: uint8 ``(3, H, W)`` decoded image.
        boxes: ``(N, 4)`` int boxes ``(x1, y1, x2, y2)``, exclusive ends, inside the image.
        size: output side ``S``.

    Returns:
        uint8 ``(N, 3, S, S)``.
    """
    crops = [
        TF.resized_crop(original, y1, x1, y2 - y1, x2 - x1, [size, size],
                        interpolation=InterpolationMode.BICUBIC, antialias=True)
        for x1, y1, x2, y2 in boxes.tolist()
    ]  # fmt: skip
    return torch.stack(crops)
