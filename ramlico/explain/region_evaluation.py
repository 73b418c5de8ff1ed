"""Score region evidence against ground-truth objects over an evaluation loader.

For each batch, each evidence source gives heatmaps ``(B, C, h, w)``: the method's own (its
``label_scores(..., evidence=True)``: RAM's plan per label, CLIP's patch similarity, LICO's
Grad-CAM; LaZSL's transported crops through :func:`ramlico.explain.regions.lazsl_heatmaps`), next
to two baselines, the uniform map and zero-shot CLIP's patch similarity. They are compared with
the objects the data records (:func:`ramlico.data.regions.object_geometry`): pointing game and
evidence mass in percent (:mod:`ramlico.metrics.regions`).

An evidence source is a callable ``(inputs, names, sizes) -> heatmaps`` or ``-> (heatmaps,
names')`` (per-descriptor maps: one name per map); ``inputs`` is the loader's ``batch[0]``
(normalised images, or LaZSL's views) and ``sizes`` the original images' ``(width, height)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ramlico.backbones import CLIPBackbone
from ramlico.data.regions import object_geometry
from ramlico.metrics.regions import RegionEvidence, object_masks, uniform_heatmaps
from ramlico.zeroshot.crops import LaZSLViews

__all__ = [
    "clip_patch_evidence",
    "default_evidence",
    "evaluate_regions",
    "images_of",
    "method_evidence",
]

Tensor = torch.Tensor
Evidence = Callable[[Any, Sequence[str], list], Any]
UNIFORM_GRID = (8, 8)


def images_of(inputs: Any, clip: CLIPBackbone) -> Tensor:
    """Normalised ``(B, 3, S, S)`` images of a loader batch (LaZSL views: the global view)."""
    if isinstance(inputs, LaZSLViews):
        pre = clip.preprocess()
        return pre.normalize(inputs.views[:, 0], clip.model.logit_scale.dtype)
    return inputs


def method_evidence(model) -> Evidence:
    """Heatmaps from the model's scoring contract (``label_scores(..., evidence=True)``).

    Raises:
        ValueError: the method gives no region evidence.
    """

    def fn(inputs: Any, names: Sequence[str], sizes: list) -> Tensor:
        out = model.label_scores(inputs, list(names), evidence=True)
        if out.heatmaps is None:
            raise ValueError(f"{type(model).__name__} gives no region evidence (heatmaps=None)")
        return out.heatmaps

    return fn


def clip_patch_evidence(
    clip: CLIPBackbone, templates: Sequence[str] = ("a photo of a {}.",)
) -> Evidence:
    """Zero-shot CLIP's patch-similarity heatmaps (the baseline), through :class:`CLIPZeroShot`."""
    from ramlico.methods.clip_zeroshot import CLIPZeroShot

    zero_shot = method_evidence(CLIPZeroShot(clip, templates=tuple(templates)).eval())
    return lambda inputs, names, sizes: zero_shot(images_of(inputs, clip), names, sizes)


def default_evidence(model, split: str) -> dict[str, Evidence]:
    """The method's evidence plus the CLIP baseline when the method has a CLIP ``backbone``.

    LaZSL (``method="lazsl"``) gives its class maps and its per-descriptor maps.
    """
    from ramlico.explain.regions import lazsl_heatmaps
    from ramlico.methods.lazsl import LaZSL

    name = type(model).__name__
    if isinstance(model, LaZSL):
        if model.hparams.method != "lazsl":
            sources = {}
        else:

            def per(flag: bool) -> Evidence:
                return lambda x, n, sizes: lazsl_heatmaps(model, x, split, sizes[0], flag)

            sources = {name: per(False), f"{name}_descriptors": per(True)}
    else:
        sources = {name: method_evidence(model)}
    clip = getattr(model, "backbone", None)
    if isinstance(clip, CLIPBackbone):
        sources["clip_patch"] = clip_patch_evidence(clip)
    return sources


def evaluate_regions(
    loader: DataLoader,
    label_names: Sequence[str],
    evidence: dict[str, Evidence],
    tolerance: float = 0.0,
) -> dict[str, dict[str, float]]:
    """Pointing game and evidence mass of each evidence source over ``loader``.

    Args:
        loader: an unshuffled loader of ``(inputs, target, ...)`` whose dataset's geometry the
            data records (:func:`object_geometry`).
        label_names: the labels of the loader's targets (the evaluated split's).
        evidence: ``{name: source}`` (module docstring); ``"uniform"`` is added.
        tolerance: pixels added to every object radius (:func:`object_masks`).

    Returns:
        ``{name: {"pointing": %, "mass": %}}``; ``{}`` when the data has no geometry.
    """
    geometry = object_geometry(loader.dataset)
    if geometry is None:
        return {}
    sources = dict(evidence)
    sources.setdefault("uniform", lambda x, n, s: uniform_heatmaps(len(s), len(n), UNIFORM_GRID))
    metrics = {name: RegionEvidence() for name in sources}
    start = 0
    for batch in loader:
        n = len(batch[1])
        geoms = geometry[start : start + n]
        start += n
        objects, sizes = [g.objects for g in geoms], [g.size for g in geoms]
        for name, fn in sources.items():
            with torch.no_grad():
                out = fn(batch[0], label_names, sizes)
            heat, names = out if isinstance(out, tuple) else (out, label_names)
            heat = heat.detach().float().cpu().clamp_min(0)
            masks = object_masks(objects, names, tuple(heat.shape[-2:]), sizes, tolerance)
            metrics[name].update(heat, masks)
    return {
        name: {k: round(float(v), 1) for k, v in m.compute().items()} for name, m in metrics.items()
    }
