"""Region evidence against ground-truth object geometry: pointing game and evidence mass.

Any method's evidence for a label is a heatmap over a grid of cells: ``heatmaps (B, C, h, w)``
(RAM's transport plan per label, LaZSL's transported crops, a Grad-CAM, CLIP's patch similarity).
The ground truth is each image's objects, discs ``{label, center [x, y], radius}`` in the pixels
of the source image (the generated data sets record them). A cell is **inside** a label's object
when its centre lies within ``radius + tolerance`` of that object's centre (a disc of the shape's
circumradius; the grid covers the whole image, as the evaluation transform resizes it whole).

For every present pair (image ``b``, label ``c`` with at least one object), with ``M`` the cells
inside ``c``'s objects:

* **pointing game** (Zhang et al., ECCV 2016): a hit when the arg-max cell of ``H[b, c]`` is in
  ``M``. Ties count fractionally: ``hit = |argmax cells in M| / |argmax cells|``, so the uniform map
  scores the area share of ``M`` (its expected value under random tie-breaking);
* **evidence mass**: the share of the map's mass inside the objects,
  ``sum_M H / sum H`` for a non-negative ``H`` (an all-zero map counts as uniform).

Both are reported in percent, averaged over present pairs. A method that looks at the right object
scores high on both; the uniform map scores the objects' area share on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric

__all__ = [
    "RegionEvidence",
    "evidence_mass",
    "object_masks",
    "pointing_game",
    "region_scores",
    "uniform_heatmaps",
]

Tensor = torch.Tensor


def _sizes(image_size: float | Sequence[Any], n: int) -> list[tuple[float, float]]:
    """One ``(width, height)`` per image from an int, a ``(W, H)`` pair or a list of pairs."""
    if isinstance(image_size, (int, float)):
        return [(float(image_size), float(image_size))] * n
    if len(image_size) == 2 and all(isinstance(v, (int, float)) for v in image_size):
        return [(float(image_size[0]), float(image_size[1]))] * n
    if len(image_size) != n:
        raise ValueError(f"image_size: {len(image_size)} sizes for {n} images")
    return [(float(w), float(h)) for w, h in image_size]


def object_masks(
    objects: Sequence[Sequence[Mapping]],
    label_names: Sequence[str | None],
    grid: tuple[int, int],
    image_size: int | Sequence[int] | Sequence[Sequence[int]],
    tolerance: float = 0.0,
) -> Tensor:
    """``(B, C, h, w)`` bool: the cells inside each label's objects, per image.

    Args:
        objects: per image, its objects ``{"label": str, "center": [x, y], "radius": r}`` in the
            source image's pixels; labels outside ``label_names`` (distractors) are ignored.
        label_names: the ``C`` labels, in the heatmaps' order; a name may repeat (several maps
            of one label, e.g. one per descriptor) and ``None`` marks a map that is not scored.
        grid: ``(h, w)`` cells of the heatmaps.
        image_size: the source images' side (int), ``(width, height)`` in pixels, or one
            ``(width, height)`` per image.
        tolerance: pixels added to every radius (the pointing game's tolerance; 0 = none).
    """
    h, w = grid
    index: dict[str, list[int]] = {}
    for c, name in enumerate(label_names):
        if name is not None:
            index.setdefault(name, []).append(c)
    masks = torch.zeros(len(objects), len(label_names), h, w, dtype=torch.bool)
    for b, (objs, (width, height)) in enumerate(
        zip(objects, _sizes(image_size, len(objects)), strict=True)
    ):
        ys = (torch.arange(h, dtype=torch.float64) + 0.5) * height / h
        xs = (torch.arange(w, dtype=torch.float64) + 0.5) * width / w
        for obj in objs:
            cs = index.get(obj["label"])
            if not cs:
                continue
            cx, cy = (float(v) for v in obj["center"])
            r = float(obj["radius"]) + tolerance
            inside = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2 <= r * r
            masks[b, cs] |= inside
    return masks


def _check(heatmaps: Tensor, masks: Tensor) -> None:
    if heatmaps.dim() != 4 or heatmaps.shape != masks.shape:
        raise ValueError(
            f"heatmaps {tuple(heatmaps.shape)} and masks {tuple(masks.shape)} must both be "
            "(B, C, h, w); build the masks with object_masks(..., grid=heatmaps.shape[-2:])"
        )
    if not torch.isfinite(heatmaps).all():
        raise ValueError("heatmaps contain NaN or Inf; check the method's evidence")


def pointing_game(heatmaps: Tensor, masks: Tensor) -> Tensor:
    """``(P,)`` hits in [0, 1] of the present pairs (ties fractional; see module docstring).

    Args:
        heatmaps: ``(B, C, h, w)`` evidence (any real values: only the arg-max matters).
        masks: ``(B, C, h, w)`` bool, from :func:`object_masks`.
    """
    _check(heatmaps, masks)
    present = masks.flatten(2).any(-1)
    flat = heatmaps.flatten(2)[present].double()
    inside = masks.flatten(2)[present]
    top = flat == flat.max(dim=-1, keepdim=True).values
    return (top & inside).sum(-1).double() / top.sum(-1).double()


def evidence_mass(heatmaps: Tensor, masks: Tensor) -> Tensor:
    """``(P,)`` share in [0, 1] of each present pair's evidence inside its objects.

    Raises:
        ValueError: a negative value (turn similarities into evidence first, e.g. a softmax
            over cells).
    """
    _check(heatmaps, masks)
    if (heatmaps < 0).any():
        raise ValueError(
            "evidence_mass needs non-negative heatmaps, got a minimum of "
            f"{float(heatmaps.min()):.3g}; use a softmax over cells or clamp at 0 first"
        )
    present = masks.flatten(2).any(-1)
    flat = heatmaps.flatten(2)[present].double()
    inside = masks.flatten(2)[present].double()
    total = flat.sum(-1)
    uniform = inside.mean(-1)
    share = (flat * inside).sum(-1) / total.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(total > 0, share, uniform)


def uniform_heatmaps(batch: int, labels: int, grid: tuple[int, int]) -> Tensor:
    """``(B, C, h, w)`` constant maps: the baseline that knows nothing about where things are."""
    return torch.ones(batch, labels, *grid)


def region_scores(heatmaps: Tensor, masks: Tensor) -> dict[str, float]:
    """``{"pointing": %, "mass": %, "pairs": P}`` over the present pairs of one batch."""
    hits = pointing_game(heatmaps, masks)
    mass = evidence_mass(heatmaps.clamp_min(0), masks)
    n = int(hits.numel())
    if n == 0:
        return {"pointing": float("nan"), "mass": float("nan"), "pairs": 0}
    return {"pointing": 100 * float(hits.mean()), "mass": 100 * float(mass.mean()), "pairs": n}


class RegionEvidence(Metric):
    """Streaming pointing game and evidence mass (percent), summed over batches and processes.

    ``update(heatmaps (B, C, h, w), masks (B, C, h, w))``; ``compute()`` returns
    ``{"pointing": ..., "mass": ...}`` averaged over every present (image, label) pair.
    Heatmaps must be non-negative (the mass needs it).
    """

    full_state_update = False
    hits: Tensor
    mass: Tensor
    pairs: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("hits", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("mass", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("pairs", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, heatmaps: Tensor, masks: Tensor) -> None:
        masks = masks.to(heatmaps.device)
        self.hits += pointing_game(heatmaps, masks).sum()
        self.mass += evidence_mass(heatmaps, masks).sum()
        self.pairs += int(masks.flatten(2).any(-1).sum())

    def compute(self) -> dict[str, Tensor]:
        if int(self.pairs) == 0:
            raise ValueError("RegionEvidence saw no (image, label) pair with an object")
        n = self.pairs.double()
        return {"pointing": 100 * self.hits / n, "mass": 100 * self.mass / n}
