"""Region evidence of LaZSL: its transported crops as heatmaps on the original image.

LaZSL's evidence for class ``k`` is where its transport plan puts the similarity mass: crop ``i``
carries ``rho_i = sum_j T_ij S*_ij`` (descriptor ``j`` alone: ``T_ij S*_ij``), and the map is
LaZSL's own crop heatmap ``H(p) = sum_i rho_i 1[p in box_i] / max(1, #boxes covering p)``
(:func:`ramlico.zeroshot.lazsl.crop_heatmaps`) on the pixels of the original image, where the
crop boxes live, average-pooled to a fixed ``grid`` (images of any size then stack; the grid
covers the whole image, as the ground-truth masks assume). RAM, CLIP and LICO give their heatmaps
through ``label_scores(..., evidence=True)``; LaZSL's come from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ramlico.zeroshot.crops import LaZSLViews
from ramlico.zeroshot.lazsl import crop_heatmaps, lazsl_contributions

__all__ = ["LAZSL_GRID", "box_heatmaps", "lazsl_heatmaps"]

Tensor = torch.Tensor
LAZSL_GRID = (32, 32)


def box_heatmaps(
    weights: Tensor,
    boxes: Tensor,
    sizes: Sequence[tuple[int, int]],
    grid: tuple[int, int] = LAZSL_GRID,
) -> Tensor:
    """Per-crop weights ``(B, N, C)`` over boxes ``(B, N, 4)`` -> maps ``(B, C, *grid)``.

    Image ``b`` is ``sizes[b] = (width, height)`` pixels; its boxes are integer ``(x1, y1, x2,
    y2)`` with exclusive ends (:func:`ramlico.zeroshot.sample_crops`). Each pixel map
    (:func:`ramlico.zeroshot.lazsl.crop_heatmaps`) is average-pooled to ``grid`` ``(h, w)``.
    """
    if weights.dim() != 3 or boxes.shape != (*weights.shape[:2], 4) or len(sizes) != len(boxes):
        raise ValueError(
            f"weights (B, N, C), boxes (B, N, 4) and B sizes must agree, got "
            f"{tuple(weights.shape)}, {tuple(boxes.shape)} and {len(sizes)} sizes"
        )
    maps = []
    for w, box, (width, height) in zip(weights, boxes, sizes, strict=True):
        pixels = crop_heatmaps(w, box, int(height), int(width))  # (C, H, W)
        maps.append(F.adaptive_avg_pool2d(pixels[None], grid)[0])
    return torch.stack(maps)


@torch.no_grad()
def lazsl_heatmaps(
    model,
    views: LaZSLViews,
    split: str,
    sizes: Sequence[tuple[int, int]],
    per_descriptor: bool = False,
    grid: tuple[int, int] = LAZSL_GRID,
) -> tuple[Tensor, list[str | None]]:
    """LaZSL's crop evidence for every class of ``split``.

    Args:
        model: a :class:`ramlico.methods.LaZSL` (``method="lazsl"``).
        views: a loader batch of :class:`LaZSLViews` (boxes on the original images).
        split: the evaluated split (its labels and descriptors).
        sizes: per image, ``(width, height)`` of the original (boxes are in its pixels).
        per_descriptor: one map per (class, descriptor) instead of per class.
        grid: ``(h, w)`` of the returned maps.

    Returns:
        ``(heatmaps (B, C', h, w), names)``: ``C' = K`` class maps (``names`` = the split's
        labels), or ``K * M_max`` descriptor maps (each label repeated ``M_max`` times; the
        padding slots of classes with fewer descriptors are named ``None`` and not scored).
    """
    if model.hparams.method != "lazsl":
        raise ValueError(f"lazsl_heatmaps needs model.method=lazsl, got {model.hparams.method!r}")
    names = list(model.label_names[split])
    glob, crops = model.view_embeddings(views)
    desc, mask = model.descriptor_embeddings(split)
    hp = model.hparams
    weighted = lazsl_contributions(glob, crops, desc.to(glob.dtype), mask, theta=hp.theta,
                                   solver=model.solver).float().cpu()  # (B, K, N, M)  # fmt: skip
    boxes = views.boxes.cpu()
    if not per_descriptor:
        return box_heatmaps(weighted.sum(-1).transpose(1, 2), boxes, sizes, grid), names
    b, k, n, m = weighted.shape
    per = weighted.permute(0, 2, 1, 3).reshape(b, n, k * m)
    valid = mask.cpu().reshape(-1).tolist()
    slots = [x for x in names for _ in range(m)]
    return box_heatmaps(per, boxes, sizes, grid), [s if v else None for s, v in
                                                   zip(slots, valid, strict=True)]  # fmt: skip
