"""Score region evidence against ground-truth objects over an evaluation loader.

For each batch, each evidence source gives heatmaps ``(B, C, h, w)``: the method's own (its
``label_scores(..., evidence=True)``: RAM's OT plan per label, CLIP's patch similarity, LICO's
Grad-CAM; LaZSL's transported crops, per class and per descriptor, through
:func:`ramlico.explain.regions.lazsl_heatmaps`), next to two baselines, the uniform map and
zero-shot CLIP's patch similarity. They are compared with the objects the data records
(:func:`ramlico.data.regions.object_geometry`): pointing game and evidence mass in percent
(:mod:`ramlico.metrics.regions`).

An evidence source is a callable ``(inputs, names, sizes) -> heatmaps``, ``-> (heatmaps,
names')`` (several maps per label, e.g. one per descriptor: one name per map, ``None`` for a map
not to score) or ``-> None`` (no evidence: the source is dropped); ``inputs`` is the loader's
``batch[0]`` (normalised images, or LaZSL's views) and ``sizes`` the original images'
``(width, height)``.

Source names (the ``<source>`` of ``regions/<split>/<source>/<pointing|mass>``): ``ram_plan``,
``clip_saa`` (zero-shot CLIP's own maps with its default value-value read-out), ``clip_patch``,
``lico_gradcam``, ``lazsl_crops``, ``lazsl_descriptors``, ``uniform`` (other methods: their
class name in lower case).
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
    "SOURCE_NAMES",
    "clip_patch_evidence",
    "default_evidence",
    "evaluate_regions",
    "images_of",
    "method_evidence",
]

Tensor = torch.Tensor
Evidence = Callable[[Any, Sequence[str], list], Any]
UNIFORM_GRID = (32, 32)  # fine enough that the uniform map scores the objects' area share
#: The evidence source name of each method's own heatmaps.
SOURCE_NAMES = {"RAM": "ram_plan", "CLIPZeroShot": "clip_patch", "LICOModule": "lico_gradcam"}


def _device(model: Any) -> torch.device:
    return getattr(model, "device", None) or torch.device("cpu")


def images_of(inputs: Any, clip: CLIPBackbone) -> Tensor:
    """Normalised ``(B, 3, S, S)`` images of a loader batch (LaZSL views: the global view)."""
    if isinstance(inputs, LaZSLViews):
        pre = clip.preprocess()
        return pre.normalize(inputs.views[:, 0], clip.model.logit_scale.dtype)
    return inputs


def method_evidence(model: Any) -> Evidence:
    """Heatmaps from the model's scoring contract (``label_scores(..., evidence=True)``);
    ``None`` when the method has none (CLIP-Adapter, OTFusion)."""

    def fn(inputs: Any, names: Sequence[str], sizes: list) -> Tensor | None:
        if isinstance(inputs, Tensor):
            inputs = inputs.to(_device(model))
        return model.label_scores(inputs, list(names), evidence=True).heatmaps

    return fn


def clip_patch_evidence(
    clip: CLIPBackbone, templates: Sequence[str] = ("a photo of a {}.",)
) -> Evidence:
    """Zero-shot CLIP's patch-similarity heatmaps (the baseline), through :class:`CLIPZeroShot`."""
    from ramlico.methods.clip_zeroshot import CLIPZeroShot

    device = next(clip.parameters()).device
    model = CLIPZeroShot(clip, templates=tuple(templates), readout="patch").to(device).eval()
    zero_shot = method_evidence(model)
    return lambda inputs, names, sizes: zero_shot(images_of(inputs, clip), names, sizes)


def default_evidence(model: Any, split: str) -> dict[str, Evidence]:
    """The method's evidence plus the CLIP baseline when the method has a CLIP ``backbone``.

    LaZSL (``method="lazsl"``) gives its class maps (``lazsl_crops``) and its per-descriptor maps
    (``lazsl_descriptors``); its baselines (``method=clip``, ``cupl``, ...) have no crops.
    """
    from ramlico.explain.regions import lazsl_heatmaps
    from ramlico.methods.lazsl import LaZSL

    name = type(model).__name__
    sources: dict[str, Evidence] = {}
    if isinstance(model, LaZSL):
        if model.hparams.method == "lazsl":

            def per(flag: bool) -> Evidence:
                return lambda x, n, sizes: lazsl_heatmaps(model, x, split, sizes, flag)

            sources = {"lazsl_crops": per(False), "lazsl_descriptors": per(True)}
    elif name == "CLIPZeroShot":
        # its own heatmaps by their read-out: clip_saa (default) or clip_patch
        sources[f"clip_{model.hparams.readout}"] = method_evidence(model)
    else:
        sources[SOURCE_NAMES.get(name, name.lower())] = method_evidence(model)
    clip = getattr(model, "backbone", None)
    if isinstance(clip, CLIPBackbone) and "clip_patch" not in sources:
        sources["clip_patch"] = clip_patch_evidence(clip)
    return sources


def evaluate_regions(
    loader: DataLoader,
    label_names: Sequence[str],
    evidence: dict[str, Evidence],
    tolerance: float = 0.0,
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """Pointing game and evidence mass of each evidence source over ``loader``.

    Under DDP each process scores its shard (the loader's sampler, e.g. the evaluation loaders'
    unrepeated distributed sampler) and the sums are reduced over processes, so every process
    returns the whole data's values.

    Args:
        loader: an unshuffled loader of ``(inputs, target, ...)`` whose dataset's geometry the
            data records (:func:`object_geometry`).
        label_names: the labels of the loader's targets (the evaluated split's).
        evidence: ``{name: source}`` (module docstring); ``"uniform"`` is added.
        tolerance: pixels added to every object radius (:func:`object_masks`).
        device: where the metric states live (the model's device: NCCL reduces only there).

    Returns:
        ``{name: {"pointing": %, "mass": %}}`` (rounded to 0.1); ``{}`` when the data has no
        geometry. Sources without evidence are left out.
    """
    geometry = object_geometry(loader.dataset)
    if geometry is None:
        return {}
    sources = dict(evidence)
    sources.setdefault("uniform", lambda x, n, s: uniform_heatmaps(len(s), len(n), UNIFORM_GRID))
    metrics = {name: RegionEvidence().to(device) for name in sources}
    # the dataset indices of each batch, in loader order (a sharded or reordered sampler too)
    batches = iter(loader.batch_sampler) if loader.batch_sampler is not None else None
    start = 0
    for batch in loader:
        n = len(batch[1])
        index = next(batches) if batches is not None else range(start, start + n)
        start += n
        geoms = [geometry[int(i)] for i in index]
        if len(geoms) != n:
            raise ValueError(f"batch of {n} items but {len(geoms)} sampler indices")
        objects, sizes = [g.objects for g in geoms], [g.size for g in geoms]
        for name, fn in list(sources.items()):
            with torch.no_grad():
                out = fn(batch[0], label_names, sizes)
            if out is None:
                sources.pop(name)
                metrics.pop(name)
                continue
            heat, names = out if isinstance(out, tuple) else (out, label_names)
            heat = heat.detach().float().to(device).clamp_min(0)
            masks = object_masks(objects, names, tuple(heat.shape[-2:]), sizes, tolerance)
            metrics[name].update(heat, masks)
    out = {}
    for name, metric in metrics.items():
        try:
            values = metric.compute()  # summed over processes
        except ValueError:  # no (image, label) pair with an object anywhere
            continue
        out[name] = {k: round(float(v), 1) for k, v in values.items()}
    return out
