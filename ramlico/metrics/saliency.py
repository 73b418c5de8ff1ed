"""Insertion / Deletion AUC of saliency maps (RISE protocol; docs/metrics.md).

For an image ``x`` (normalised, ``(C, H, W)``), a saliency map ``s`` ``(H, W)`` and the model's
top-1 class ``c`` on ``x``, pixels are ordered by ``s`` descending (ties: ascending flat index).
With ``m`` pixels per step and ``n = ceil(HW / m)`` steps, ``n + 1`` images are scored by the
softmax probability of ``c``:

* insertion: ``x_0 = blur(x)``; step ``t`` copies the first ``t m`` pixels of the order from ``x``;
* deletion:  ``x_0 = x``; step ``t`` sets the first ``t m`` pixels to the substrate (0 in
  normalised space = the dataset mean colour, or ``blur(x)``);

``AUC = (sum_t sigma_t - (sigma_0 + sigma_n) / 2) / n`` (trapezoid rule on [0, 1]).
Insertion: higher is better; deletion: lower is better; overall = insertion - deletion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "auc_trapezoid",
    "insertion_deletion",
    "perturbation_scores",
    "rise_blur",
    "rise_blur_kernel",
]

Tensor = torch.Tensor
DEFAULT_STEPS = 28  # 224 * 8 = 1,792 pixels per step on 224 x 224 images ("3.6%")
SUBSTRATES = ("zeros", "blur")


def auc_trapezoid(scores: Tensor) -> Tensor:
    """``(..., n + 1)`` scores on an even grid of [0, 1] -> ``(...)`` trapezoid-rule area.

    ``AUC = (sum_t s_t - (s_0 + s_n) / 2) / n``; e.g. ``[0.1, 0.5, 0.8, 0.9, 0.95]`` -> 0.68125.

    >>> round(float(auc_trapezoid(torch.tensor([0.1, 0.5, 0.8, 0.9, 0.95]))), 5)
    0.68125
    """
    n = scores.shape[-1] - 1
    if n < 1:
        raise ValueError(f"need at least 2 scores for an AUC, got {scores.shape[-1]}")
    return (scores.sum(-1) - 0.5 * (scores[..., 0] + scores[..., -1])) / n


def rise_blur_kernel(size: int = 11, sigma: float = 5.0) -> Tensor:
    """RISE's ``(size, size)`` kernel: a unit impulse Gaussian-filtered (SciPy, reflect mode).

    The reflect mode folds the tails back, so the kernel sums to 1.
    """
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1.0
    return torch.from_numpy(gaussian_filter(impulse, sigma, mode="reflect")).float()


def rise_blur(images: Tensor, size: int = 11, sigma: float = 5.0) -> Tensor:
    """Blur ``(B, C, H, W)`` per channel with :func:`rise_blur_kernel`, zero padding ``size//2``."""
    c = images.shape[1]
    kernel = rise_blur_kernel(size, sigma).to(images)
    weight = kernel.expand(c, 1, size, size)
    return F.conv2d(images, weight, padding=size // 2, groups=c)


def _pixel_order(saliency: Tensor) -> Tensor:
    """Flat indices sorted by saliency descending, ties by ascending index (stable sort)."""
    return torch.sort(-saliency.flatten().float(), stable=True).indices


def perturbation_scores(
    model: Callable[[Tensor], Tensor],
    image: Tensor,
    saliency: Tensor,
    mode: str,
    step: int | None = None,
    substrate: str = "zeros",
    insertion_start: str = "blur",
    target: int | None = None,
    chunk: int = 32,
) -> Tensor:
    """Softmax scores of the target class along an insertion or deletion game.

    Args:
        model: ``(B, C, H, W) -> (B, K)`` logits (in eval mode).
        image: ``(C, H, W)`` normalised image.
        saliency: ``(H, W)`` saliency map (only its order matters).
        mode: ``"insertion"`` or ``"deletion"``.
        step: pixels per step ``m``; ``None`` = ``ceil(HW / 28)`` (1,792 at 224 x 224).
        substrate: deletion substrate, ``"zeros"`` (normalised space) or ``"blur"``.
        insertion_start: insertion start image, ``"blur"`` (RISE) or ``"zeros"``.
        target: class ``c``; ``None`` = the model's top-1 on ``image``.
        chunk: images per forward pass.
    Returns:
        ``(n + 1,)`` float32 scores ``sigma_0 .. sigma_n``.
    Raises:
        ValueError: shapes that do not match, or unknown options.
    """
    if mode not in ("insertion", "deletion"):
        raise ValueError(f"mode must be 'insertion' or 'deletion', got {mode!r}")
    for name, value in (("substrate", substrate), ("insertion_start", insertion_start)):
        if value not in SUBSTRATES:
            raise ValueError(f"{name}={value!r} is not supported; choose one of {SUBSTRATES}")
    if image.dim() != 3 or saliency.shape != image.shape[-2:]:
        raise ValueError(
            f"image (C, H, W) and saliency (H, W) must match; got {tuple(image.shape)} and "
            f"{tuple(saliency.shape)} (upsample the saliency map to the input size)"
        )
    c, h, w = image.shape
    hw = h * w
    step = step or math.ceil(hw / DEFAULT_STEPS)
    n = math.ceil(hw / step)
    image = image.float()
    blurred = rise_blur(image[None])[0]
    zeros = torch.zeros_like(image)
    if mode == "insertion":
        start, finish = (blurred if insertion_start == "blur" else zeros), image
    else:
        start, finish = image, (zeros if substrate == "zeros" else blurred)
    order = _pixel_order(saliency.to(image.device))
    rank = torch.empty_like(order)
    rank[order] = torch.arange(hw, device=order.device)
    counts = torch.clamp(torch.arange(n + 1, device=image.device) * step, max=hw)
    # mask[t, p] = 1 if pixel p is among the first t*m of the order: (n+1, 1, H, W)
    mask = (rank.view(1, hw) < counts.view(-1, 1)).view(n + 1, 1, h, w).to(image.dtype)
    scores = []
    with torch.no_grad():
        if target is None:
            target = int(model(image[None]).argmax(-1))
        for i in range(0, n + 1, chunk):
            m = mask[i : i + chunk]
            batch = start[None] * (1 - m) + finish[None] * m
            probs = torch.softmax(model(batch).float(), dim=-1)
            scores.append(probs[:, target])
    return torch.cat(scores)


def insertion_deletion(
    model: Callable[[Tensor], Tensor],
    image: Tensor,
    saliency: Tensor,
    step: int | None = None,
    substrate: str = "zeros",
    insertion_start: str = "blur",
    target: int | None = None,
) -> dict[str, float]:
    """Insertion and deletion AUC (fractions in [0, 1]) of one image and its saliency map.

    Returns:
        ``{"insertion": ..., "deletion": ..., "overall": insertion - deletion}``.
    """
    if target is None:
        with torch.no_grad():
            target = int(model(image[None].float()).argmax(-1))
    kw: dict[str, Any] = dict(
        step=step, substrate=substrate, insertion_start=insertion_start, target=target
    )
    ins = float(auc_trapezoid(perturbation_scores(model, image, saliency, "insertion", **kw)))
    dele = float(auc_trapezoid(perturbation_scores(model, image, saliency, "deletion", **kw)))
    return {"insertion": ins, "deletion": dele, "overall": ins - dele}
