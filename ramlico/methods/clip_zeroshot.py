"""Zero-shot CLIP: score each label by prompt similarity (the first row of every results table).

``score_ic = logit_scale * <x_i / |x_i|, w_c>`` with ``w_c`` the normalised mean of the unit
text embeddings of label ``c`` under the prompt templates (open_clip's
``build_zero_shot_classifier``). Evaluation only: no parameter is trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone
from ramlico.methods.base import RamlicoModule

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
        self.templates = tuple(templates)
        self._classifiers: dict[str, Tensor] = {}

    def on_label_sets_ready(self) -> None:
        self._classifiers = {}

    def classifier(self, split: str) -> Tensor:
        """``(D, C)`` text classifier of ``split``'s labels, built once per device."""
        weights = self._classifiers.get(split)
        if weights is None or weights.device != self.device:
            weights = self.backbone.zero_shot_classifier(self.label_names[split], self.templates)
            self._classifiers[split] = weights.to(self.device)
        return self._classifiers[split]

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        image = F.normalize(self.backbone.embed_image(images), dim=-1)
        return self.backbone.logit_scale * image @ self.classifier(split).to(image.dtype)
