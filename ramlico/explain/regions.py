"""Region evidence as heatmaps ``(B, C, h, w)``, from each method's own quantities.

* patch evidence ``(B, N, C)`` (RAM's transport plan ``T``, whose column ``c`` is how label
  ``c``'s mass is spread over the ``N = h w`` regions) -> :func:`patch_heatmaps`;
* CLIP's raw patch similarity (the baseline; MaskCLIP's read-out: ``ln_post`` + ``proj`` of the
  last block's patch tokens): ``softmax_n(logit_scale * cos(z_n, t_c))`` over the cells ->
  :func:`clip_patch_heatmaps`;
* per-crop weights ``(B, K, C)`` over boxes (LaZSL's transported crops) -> :func:`box_heatmaps`,
  ``H(p) = sum_i w_i 1[p in box_i] / max(1, #boxes covering p)``, the LaZSL reference heatmap;
* Grad-CAM maps are heatmaps already (``(B, H, W)`` per target class).

They are scored against ground truth by :mod:`ramlico.metrics.regions` and drawn by
:func:`overlay_image`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ramlico.backbones import CLIPBackbone
from ramlico.zeroshot.lazsl import crop_heatmap

__all__ = ["box_heatmaps", "clip_patch_heatmaps", "overlay_image", "patch_heatmaps"]

Tensor = torch.Tensor


def patch_heatmaps(evidence: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
    """``(B, N, C)`` evidence over patches -> ``(B, C, h, w)`` (row-major patch order).

    ``grid`` defaults to the square ``sqrt(N) x sqrt(N)``.
    """
    b, n, c = evidence.shape
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{n} patches do not form a square grid; pass grid=(h, w)")
        grid = (side, side)
    if grid[0] * grid[1] != n:
        raise ValueError(f"grid {grid} does not hold {n} patches")
    return evidence.transpose(1, 2).reshape(b, c, *grid)


@torch.no_grad()
def clip_patch_heatmaps(backbone: CLIPBackbone, images: Tensor, text: Tensor) -> Tensor:
    """CLIP's patch-similarity evidence ``(B, C, h, w)``, each map a softmax over its cells.

    Args:
        backbone: the CLIP (its last patch layer is read).
        images: ``(B, 3, H, W)`` normalised images.
        text: ``(C, D)`` label embeddings (e.g. ``zero_shot_classifier(names).t()``).
    """
    feats = backbone.encode_image(images)
    tokens = feats.patch_tokens[max(feats.patch_tokens)]
    sim = F.normalize(tokens.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
    evidence = torch.softmax(backbone.logit_scale.float() * sim, dim=1)
    return patch_heatmaps(evidence)


def box_heatmaps(weights: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """Per-crop weights ``(B, K, C)`` over boxes ``(B, K, 4)`` -> pixel maps ``(B, C, H, W)``.

    ``boxes`` are integer ``(x1, y1, x2, y2)`` with exclusive ends in the ``H x W`` image
    (:func:`ramlico.zeroshot.sample_crops`); see :func:`ramlico.zeroshot.lazsl.crop_heatmap`.
    """
    if weights.dim() != 3 or boxes.shape != (*weights.shape[:2], 4):
        raise ValueError(
            f"weights (B, K, C) and boxes (B, K, 4) must agree, got {tuple(weights.shape)} and "
            f"{tuple(boxes.shape)}"
        )
    maps = [
        torch.stack([crop_heatmap(w[:, c], box, height, width) for c in range(w.shape[1])])
        for w, box in zip(weights, boxes, strict=True)
    ]
    return torch.stack(maps)


def overlay_image(
    image: Image.Image,
    heatmap: Tensor,
    objects: Sequence[Mapping] = (),
    label: str | None = None,
    scale: int = 4,
    alpha: float = 0.55,
) -> Image.Image:
    """The image with a heatmap overlay (jet) and the ground-truth discs of ``label`` outlined.

    Args:
        image: the RGB source image.
        heatmap: ``(h, w)`` evidence (any non-negative scale; min-max normalised here).
        objects: the image's objects ``{label, center, radius}`` in source pixels; those of
            ``label`` are drawn white, others (distractors, other labels) thin grey.
        label: the label whose objects are highlighted.
        scale: upscaling of the output (nearest-neighbour image, bilinear heatmap).
        alpha: heatmap opacity.
    """
    from matplotlib import colormaps

    w, h = image.size
    size = (w * scale, h * scale)
    heat = heatmap.detach().float().cpu()[None, None]
    heat = F.interpolate(heat, size=size[::-1], mode="bilinear", align_corners=False)[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)
    colours = (colormaps["jet"](heat.numpy())[..., :3] * 255).astype(np.float32)
    base = np.asarray(image.convert("RGB").resize(size, Image.Resampling.NEAREST), np.float32)
    out = Image.fromarray(((1 - alpha) * base + alpha * colours).round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for obj in objects:
        cx, cy = (float(v) * scale for v in obj["center"])
        r = float(obj["radius"]) * scale
        mine = label is not None and obj["label"] == label
        colour = (255, 255, 255) if mine else (90, 90, 90)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=3 if mine else 1)
    return out
