"""Region evidence of LaZSL: its transported crops as heatmaps on the original image.

LaZSL's evidence for class ``k`` is where its transport plan puts the similarity mass: crop ``i``
carries ``rho_i = sum_j T_ij S*_ij`` (descriptor ``j`` alone: ``T_ij S*_ij``), and the map is
LaZSL's own crop heatmap ``H(p) = sum_i rho_i 1[p in box_i] / max(1, #boxes covering p)``
(:func:`ramlico.zeroshot.lazsl.crop_heatmap`) on the pixels of the original image, where the
crop boxes live. RAM, CLIP and LICO give their heatmaps through ``label_scores(...,
evidence=True)``; LaZSL's come from here.
"""

from __future__ import annotations

import torch

from ramlico.zeroshot.crops import LaZSLViews
from ramlico.zeroshot.lazsl import crop_heatmaps, lazsl_contributions

__all__ = ["box_heatmaps", "lazsl_heatmaps"]

Tensor = torch.Tensor


def box_heatmaps(weights: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """Per-crop weights ``(B, N, C)`` over boxes ``(B, N, 4)`` -> pixel maps ``(B, C, H, W)``.

    ``boxes`` are integer ``(x1, y1, x2, y2)`` with exclusive ends in the ``H x W`` image
    (:func:`ramlico.zeroshot.sample_crops`); see :func:`ramlico.zeroshot.lazsl.crop_heatmaps`.
    """
    if weights.dim() != 3 or boxes.shape != (*weights.shape[:2], 4):
        raise ValueError(
            f"weights (B, N, C) and boxes (B, N, 4) must agree, got {tuple(weights.shape)} and "
            f"{tuple(boxes.shape)}"
        )
    maps = [crop_heatmaps(w, box, height, width) for w, box in zip(weights, boxes, strict=True)]
    return torch.stack(maps)


@torch.no_grad()
def lazsl_heatmaps(
    model, views: LaZSLViews, split: str, size: tuple[int, int], per_descriptor: bool = False
) -> tuple[Tensor, list[str]]:
    """LaZSL's crop evidence for every class of ``split``.

    Args:
        model: a :class:`ramlico.methods.LaZSL` (``method="lazsl"``).
        views: a loader batch of :class:`LaZSLViews` (boxes on the original images).
        split: the evaluated split (its labels and descriptors).
        size: ``(width, height)`` of the original images (boxes are in their pixels).
        per_descriptor: one map per (class, descriptor) instead of per class.

    Returns:
        ``(heatmaps (B, C', H, W), names)``: ``C' = K`` class maps (``names`` = the split's
        labels), or ``K * M_max`` descriptor maps (each label repeated ``M_max`` times; padded
        descriptors give empty maps, which score as uniform).
    """
    if model.hparams.method != "lazsl":
        raise ValueError(f"lazsl_heatmaps needs model.method=lazsl, got {model.hparams.method!r}")
    names = list(model.label_names[split])
    glob, crops = model.view_embeddings(views)
    desc, mask = model.descriptor_embeddings(split)
    hp = model.hparams
    weighted = lazsl_contributions(glob, crops, desc.to(glob.dtype), mask, theta=hp.theta,
                                   solver=model.solver).cpu()  # (B, K, N, M)  # fmt: skip
    width, height = size
    boxes = views.boxes.cpu()
    if not per_descriptor:
        return box_heatmaps(weighted.sum(-1).transpose(1, 2), boxes, height, width), names
    b, k, n, m = weighted.shape
    per = weighted.permute(0, 2, 1, 3).reshape(b, n, k * m)
    return box_heatmaps(per, boxes, height, width), [x for x in names for _ in range(m)]

