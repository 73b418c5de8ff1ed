"""Zero-shot CLIP: score each label by prompt similarity (the first row of every results table).

``score_ic = logit_scale * <x_i / |x_i|, w_c>`` with ``w_c`` the normalised mean of the unit
text embeddings of label ``c`` under the prompt templates (open_clip's
``build_zero_shot_classifier``). Evaluation only: no parameter is trained.

Region evidence: region features ``z_n`` ``(B, N, D)`` against the same classifier,
``H_c = softmax_n(logit_scale <z_n/|z_n|, w_c>)`` on the patch grid (each map sums to 1 over the
patches). Two read-outs of the frozen tower (``readout``):

* ``"saa"`` (default): the parameter-free value-value read-out of every block that RAM's frozen
  teacher uses (:func:`ramlico.modules.ladder.saa_tower`, then ``ln_post`` + ``proj``;
  SCLIP/ClearCLIP-style). CLIP's raw patch tokens match text poorly; this read-out of the same
  weights localises labels far better (docs/toy_world.md, "Region evidence");
* ``"patch"``: the projected patch tokens of the last block (the MaskCLIP convention), the
  ``clip_patch`` baseline of the region evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone
from ramlico.explain.heatmaps import patch_grid
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.modules import TextFeatureCache
from ramlico.modules.ladder import LadderLocalAdapter, saa_tower

__all__ = ["READOUTS", "CLIPZeroShot"]

Tensor = torch.Tensor
#: Region read-outs of the heatmaps (:class:`CLIPZeroShot` ``readout``).
READOUTS = ("saa", "patch")


class CLIPZeroShot(RamlicoModule):
    """Training-free zero-shot multi-label scoring with a frozen CLIP.

    Args:
        backbone: a (frozen) :class:`CLIPBackbone`.
        templates: prompt templates with one ``{}`` for the label name.
        ks: ``k`` of the P/R/F1@k metrics.
        readout: region features of the heatmaps, ``"saa"`` or ``"patch"`` (module docstring);
            the scores never depend on it.
    """

    eval_only = True

    def __init__(
        self,
        backbone: CLIPBackbone,
        templates: Sequence[str] = ("a photo of a {}.",),
        ks: Sequence[int] = (3, 5),
        readout: str = "saa",
    ) -> None:
        super().__init__(ks=ks)
        if readout not in READOUTS:
            raise ValueError(
                f"model.readout must be one of {list(READOUTS)} (region features of the "
                f"heatmaps), got {readout!r}"
            )
        self.save_hyperparameters(ignore=["backbone"], logger=False)
        self.backbone = backbone
        self.templates = TextFeatureCache.check_templates(templates)
        self.text = TextFeatureCache(backbone)

    def eval_transform(self) -> Any:
        """The backbone's own preprocessing (adopted by single-label classification data)."""
        return self.backbone.preprocess()

    def scores(self, images: Tensor, label_names: Sequence[str]) -> Tensor:
        """``(B, C)`` logits ``logit_scale * cos(image, w_c)`` (label-count independent)."""
        image = F.normalize(self.backbone.embed_image(images), dim=-1)
        weights = self.text.classifier(label_names, self.templates, self.device)
        weights = weights.to(image.dtype)
        return self.backbone.logit_scale * image @ weights

    def label_scores(
        self, images: Tensor, label_names: Sequence[str], evidence: bool = True
    ) -> LabelScores:
        if not evidence:
            return super().label_scores(images, label_names, evidence=False)
        weights = self.text.classifier(label_names, self.templates, self.device)
        scale = self.backbone.logit_scale
        if self.hparams.readout == "saa":
            visual = self.backbone.model.visual
            with torch.no_grad():
                x, r = saa_tower(visual, images)
                tokens = LadderLocalAdapter.project(visual, torch.cat([x[:, :1], r[:, 1:]], 1))
            global_embed, regions = tokens[:, 0], tokens[:, 1:]
        else:
            feats = self.backbone.encode_image(images)
            global_embed = feats.global_embed
            regions = feats.patch_tokens[self.backbone.patch_layers[-1]]
        image = F.normalize(global_embed, dim=-1)
        scores = scale * image @ weights.to(image.dtype)
        patches = F.normalize(regions, dim=-1)
        dense = scale * patches @ weights.to(patches.dtype)  # (B, N, C)
        heatmaps = patch_grid(torch.softmax(dense.float(), dim=1))
        return LabelScores(scores=scores, logits=scores, heatmaps=heatmaps)
