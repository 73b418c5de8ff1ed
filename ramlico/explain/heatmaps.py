"""Region evidence as pictures: patch-grid maps, upsampling to the image, overlays, peaks.

A method's region evidence is one non-negative map per label on its own grid (RAM and CLIP:
the ``h x w`` ViT patch grid; LICO's Grad-CAM: the input pixels). To show it on the original
image (any size; the model saw it resized to a square) the map is bilinearly resized to the
image's ``(H, W)``, min-max scaled to [0, 1] and blended over the image with a colour map.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["heatmap_box", "heatmap_overlay", "heatmap_peak", "patch_grid", "resize_heatmap"]

Tensor = torch.Tensor


def patch_grid(values: Tensor) -> Tensor:
    """``(B, N, C)`` values per patch and label -> ``(B, C, h, w)`` with ``h = w = sqrt(N)``.

    Patches are in row-major order (the ViT token order).

    Raises:
        ValueError: ``N`` is not a square number.
    """
    b, n, c = values.shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{n} patch tokens do not form a square grid")
    return values.transpose(1, 2).reshape(b, c, side, side)


def resize_heatmap(heatmap: Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` map -> ``(H, W)`` float32 in [0, 1] for an image of ``size = (W, H)`` pixels.

    Bilinear (``align_corners=False``: each grid cell covers its share of the image), then
    min-max scaled; a constant map gives zeros.
    """
    grid = torch.as_tensor(np.asarray(heatmap), dtype=torch.float32)
    if grid.dim() != 2:
        raise ValueError(f"a heatmap is (h, w), got shape {tuple(grid.shape)}")
    width, height = size
    up = F.interpolate(grid[None, None], size=(height, width), mode="bilinear",
                       align_corners=False)[0, 0]  # fmt: skip
    low, high = float(up.min()), float(up.max())
    if high - low <= 1e-12:
        return np.zeros((height, width), dtype=np.float32)
    return ((up - low) / (high - low)).numpy().astype(np.float32)


def heatmap_peak(heatmap: Tensor | np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """Centre ``(x, y)`` in image pixels of the grid cell with the largest value.

    ``size = (W, H)`` of the image; cell ``(i, j)`` of an ``h x w`` grid has its centre at
    ``((j + 0.5) W / w, (i + 0.5) H / h)``.
    """
    grid = np.asarray(heatmap, dtype=np.float64)
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    width, height = size
    return (j + 0.5) * width / grid.shape[1], (i + 0.5) * height / grid.shape[0]


def heatmap_box(
    heatmap: Tensor | np.ndarray, size: tuple[int, int], level: float = 0.5
) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` in image pixels around the grid cells with ``value >= level * max``.

    A coarse box of where the evidence is (the bounding box of the cells above the level);
    ``size = (W, H)`` of the image.
    """
    grid = np.asarray(heatmap, dtype=np.float64)
    rows, cols = np.nonzero(grid >= level * grid.max())
    width, height = size
    sx, sy = width / grid.shape[1], height / grid.shape[0]
    return (cols.min() * sx, rows.min() * sy, (cols.max() + 1) * sx, (rows.max() + 1) * sy)


def heatmap_overlay(
    image: Image.Image, heatmap: Tensor | np.ndarray, alpha: float = 0.5
) -> Image.Image:
    """The RGB ``image`` with the (resized, min-max scaled) heatmap blended over it (jet map).

    Args:
        image: the original image (any size and mode; converted to RGB).
        heatmap: ``(h, w)`` non-negative evidence.
        alpha: weight of the colour map (0 = image only, 1 = map only).
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    mask = resize_heatmap(heatmap, image.size)
    out = show_cam_on_image(rgb, mask, use_rgb=True, image_weight=1.0 - alpha)
    return Image.fromarray(out)
