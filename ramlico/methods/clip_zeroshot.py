"""Zero-shot CLIP: score each label by prompt similarity (the first row of every results table).

``score_ic = logit_scale * <x_i / |x_i|, w_c>`` with ``w_c`` the normalised mean of the unit
text embeddings of label ``c`` under the prompt templates (open_clip's
``build_zero_shot_classifier``). Evaluation only: no parameter is trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone
from ramlico.methods.base import RamlicoModule
from ramlico.modules import TextFeatureCache

__all__ = ["CLIPZeroShot"]

Tensor = torch.Tensor


class CLIPZeroShot(RamlicoModule):
    """Training-free zero-shot multi-label scoring with a frozen CLIP.

    Args:
        backbone: a (frozen) :class:`CLIPBackbone`.
        templates: prompt templates with one ``{}`` for the label name.
        ks: ``k`` of the P/R/F1@k metrics.
    """

    eval_only = True

    def __init__(
        self,
        backbone: CLIPBackbone,
        templates: Sequence[str] = ("a photo of a {}.",),
        ks: Sequence[int] = (3, 5),
    ) -> None:
        super().__init__(ks=ks)
        self.save_hyperparameters(ignore=["backbone"], logger=False)
        self.backbone = backbone
        self.templates = TextFeatureCache.check_templates(templates)
        self.text = TextFeatureCache(backbone)

    def eval_transform(self) -> Any:
        """The backbone's own preprocessing (adopted by single-label classification data)."""
        return self.backbone.preprocess()

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        image = F.normalize(self.backbone.embed_image(images), dim=-1)
        weights = self.text.classifier(self.label_names[split], self.templates, self.device)
        weights = weights.to(image.dtype)
        return self.backbone.logit_scale * image @ weights
