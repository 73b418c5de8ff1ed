"""Zero-shot report of a CLIP on the toy world (the numbers of the toy CLIP's model card).

Three fixed probe sets, built in memory exactly as the demos' data configs write them to disk:

* ``easy``: the single-label set of ``data=classification_generated`` (one shape per image,
  10 per class, seed 0): top-1 accuracy, per class as well;
* ``hard``: the hard single-label set of ``data=classification_generated_hard`` (the shape among
  distractors and clutter, 10 per class, seed 0): top-1 accuracy;
* ``multilabel``: the test split of ``data=generated`` (160 images with 1-3 shapes, seed 0): mAP
  over the 20 labels, from the image embedding and from the best patch token.

Scores are CLIP's: cosine between the image embedding and the mean prompt embedding of each label.
:func:`vision_report` measures a vision-only model (the toy VFM of OTFusion) on the same sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone
from ramlico.backbones.clip import project_visual_tokens
from ramlico.data.generated import GENERATED_CLASSES, generated_split_scenes
from ramlico.data.scenes import generated_classification_scenes
from ramlico.data.transforms import build_eval_transform
from ramlico.metrics.functional import mean_average_precision, topk_accuracy
from ramlico.modules.ladder import saa_tower

__all__ = ["ZERO_SHOT_TEMPLATES", "probe_sets", "vision_report", "zero_shot_report"]

ZERO_SHOT_TEMPLATES = ("a photo of a {}.",)
Tensor = torch.Tensor


def probe_sets(
    image_size: int = 64, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"easy" | "hard": (images, class indices), "multilabel": (images, multi-hot)}``.

    Images are ``(N, 3, S, S)`` after the evaluation transform (resize to ``image_size``,
    normalise; CLIP's statistics by default); classes follow ``GENERATED_CLASSES``.
    """
    kw: dict[str, Any] = {k: v for k, v in (("mean", mean), ("std", std)) if v is not None}
    transform = build_eval_transform(image_size, **kw)
    index = {c: i for i, c in enumerate(GENERATED_CLASSES)}
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for name, hard in (("easy", False), ("hard", True)):
        scenes = list(generated_classification_scenes(10, 64, 0, hard=hard))
        images = torch.stack([transform(img) for _, _, img, _ in scenes])
        out[name] = (images, torch.tensor([index[c] for c, _, _, _ in scenes]))
    rows = list(generated_split_scenes("test", 160, 64, 0))
    targets = torch.zeros(len(rows), len(GENERATED_CLASSES))
    for r, (_, row) in enumerate(rows):
        targets[r, [index[x] for x in row["labels"]]] = 1.0
    out["multilabel"] = (torch.stack([transform(img) for img, _ in rows]), targets)
    return out


@torch.no_grad()
def _scores(embed: Callable[[Tensor], Tensor], classifier: Tensor, images: Tensor) -> Tensor:
    feats = torch.cat([F.normalize(embed(x), dim=-1) for x in images.split(200)])
    return feats @ classifier.to(feats.dtype)


@torch.no_grad()
def _best_region(backbone: CLIPBackbone, images: Tensor, classifier: Tensor, saa: bool) -> Tensor:
    """``(B, C)``: each label's best cosine over the image's regions.

    Regions: the projected last-block patch tokens, or (``saa``) the value-value read-out of every
    block (RAM's frozen teacher regions, :func:`ramlico.modules.ladder.saa_tower`).
    """
    if saa:
        visual = backbone.model.visual
        _, r = saa_tower(visual, images)
        regions = project_visual_tokens(visual, r[:, 1:])
    else:
        feats = backbone.encode_image(images)
        regions = feats.patch_tokens[max(feats.patch_tokens)]
    regions = F.normalize(regions, dim=-1)
    return torch.einsum("bnd,dc->bnc", regions, classifier.to(regions.dtype)).amax(dim=1)


@torch.no_grad()
def zero_shot_report(
    backbone: CLIPBackbone, templates: Sequence[str] = ZERO_SHOT_TEMPLATES
) -> dict[str, float | dict[str, float]]:
    """Zero-shot CLIP on the three probe sets (percent, rounded to 0.1).

    Returns:
        ``easy_top1``, ``hard_top1``, ``multilabel_mAP``, ``multilabel_patch_mAP`` and
        ``multilabel_saa_mAP`` (labels scored by their best raw patch token / best SAA region
        instead of the image embedding: how local each read-out is),
        ``easy_top1_min_class`` (the worst label) and ``easy_top1_per_class``.
    """
    was_training = backbone.training
    backbone.eval()
    sets = probe_sets(backbone.image_size, backbone.image_mean, backbone.image_std)
    classifier = backbone.zero_shot_classifier(GENERATED_CLASSES, tuple(templates))
    report: dict[str, float | dict[str, float]] = {}
    per_class: dict[str, float] = {}
    for name in ("easy", "hard"):
        images, labels = sets[name]
        scores = _scores(backbone.embed_image, classifier, images)
        report[f"{name}_top1"] = round(float(topk_accuracy(scores, labels, k=1)), 1)
        if name == "easy":
            hits = (scores.argmax(-1) == labels).float()
            for c, label in enumerate(GENERATED_CLASSES):
                per_class[label] = round(100.0 * float(hits[labels == c].mean()), 1)
    images, targets = sets["multilabel"]
    scores = _scores(backbone.embed_image, classifier, images)
    report["multilabel_mAP"] = round(float(mean_average_precision(scores, targets)), 1)
    for key, saa in (("multilabel_patch_mAP", False), ("multilabel_saa_mAP", True)):
        best = torch.cat([_best_region(backbone, x, classifier, saa) for x in images.split(200)])
        report[key] = round(float(mean_average_precision(best, targets)), 1)
    report["easy_top1_min_class"] = min(per_class.values())
    report["easy_top1_per_class"] = per_class
    backbone.train(was_training)
    return report


def _nearest_class_mean(features: Tensor, labels: Tensor, k: int) -> float:
    """Top-1 (percent) of assigning each image to the closest class mean (cosine)."""
    feats = F.normalize(features, dim=-1)
    means = F.normalize(torch.stack([feats[labels == c].mean(0) for c in range(k)]), dim=-1)
    return round(100.0 * float(((feats @ means.T).argmax(-1) == labels).float().mean()), 1)


@torch.no_grad()
def vision_report(vfm: torch.nn.Module, clip: CLIPBackbone | None = None) -> dict[str, float]:
    """How well a vision-only model's features group the toy world's classes (percent, 0.1).

    Args:
        vfm: maps ``(B, 3, 64, 64)`` ImageNet-normalised images to ``(B, E)`` features (a
            :class:`ramlico.backbones.TimmBackbone`).
        clip: with the toy CLIP, also OTFusion (the paper's defaults) on the hard set, fusing
            that CLIP's prior with ``vfm``'s features.

    Returns:
        ``easy_ncm_top1`` / ``hard_ncm_top1``: nearest class mean on the easy / hard single-label
        probe set (labels used: a diagnostic of the feature space, not a zero-shot number); with
        ``clip``: ``hard_clip_top1`` (its zero-shot prior) and ``hard_otfusion_top1``.
    """
    from ramlico.zeroshot.otfusion import otfusion_predict  # zeroshot builds on the toy world

    was_training = vfm.training
    vfm.eval()
    k = len(GENERATED_CLASSES)
    sets = probe_sets(64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    report: dict[str, float] = {}
    feats = {}
    for name in ("easy", "hard"):
        images, labels = sets[name]
        feats[name] = torch.cat([vfm(x).float() for x in images.split(200)])
        report[f"{name}_ncm_top1"] = _nearest_class_mean(feats[name], labels, k)
    if clip is not None:
        clip.eval()
        images, labels = probe_sets(clip.image_size, clip.image_mean, clip.image_std)["hard"]
        text = clip.zero_shot_classifier(GENERATED_CLASSES, ZERO_SHOT_TEMPLATES).T.float()
        image = torch.cat([clip.embed_image(x).float() for x in images.split(200)])
        result = otfusion_predict(image, text, feats["hard"], labels=labels)
        report["hard_clip_top1"] = round(float(topk_accuracy(result.clip_prior, labels, k=1)), 1)
        fused = topk_accuracy(result.probs, labels, k=1)
        report["hard_otfusion_top1"] = round(float(fused), 1)
    vfm.train(was_training)
    return report
