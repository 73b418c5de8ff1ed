"""OTFusion as an evaluation-only LightningModule (transductive: labels the whole test split).

Test steps only extract features (CLIP image embeddings, DINOv2 embeddings, labels); at the end
of the epoch :func:`ramlico.zeroshot.otfusion_predict` labels the whole split with the shared OT
engine, and both OTFusion and the CLIP zero-shot prior are scored (``test/<split>/top1`` and
``test/<split>/clip_top1``). Spec: ``otfusion.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.methods.base import RamlicoModule
from ramlico.metrics.functional import topk_accuracy
from ramlico.modules import TextClassifierCache
from ramlico.zeroshot import otfusion_predict

__all__ = ["OTFusion"]

Tensor = torch.Tensor


class OTFusion(RamlicoModule):
    """CLIP x DINOv2 transductive zero-shot classification by optimal transport.

    Args:
        clip: frozen :class:`CLIPBackbone`.
        dino: frozen :class:`TimmBackbone` (DINOv2 ViT); ``None`` = CLIP image features only.
        templates: prompt templates for the class texts.
        **fusion_kwargs: keyword arguments of :func:`ramlico.zeroshot.otfusion_predict`
            (``rounds``, ``eps``, ``text_weight``, ``class_prior``, ...).
    """

    eval_only = True

    def __init__(
        self,
        clip: CLIPBackbone,
        dino: TimmBackbone | None = None,
        templates: Sequence[str] = ("a photo of a {}.",),
        **fusion_kwargs: Any,
    ) -> None:
        super().__init__(ks=(1, 5))
        self.save_hyperparameters(ignore=["clip", "dino"], logger=False)
        self.clip = clip
        self.dino = dino
        self.text = TextClassifierCache(clip, templates)
        self.fusion_kwargs = dict(fusion_kwargs)
        if dino is None:
            self.fusion_kwargs.setdefault("sources", ("clip_image",))
        self._features: dict[str, list[list[Tensor]]] = {}

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        """Inductive CLIP zero-shot scores (the prior); OTFusion itself needs the whole split."""
        image = F.normalize(self.clip.embed_image(images), dim=-1)
        return image @ self.text.get(self.label_names[split], self.device).to(image.dtype)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch[0], batch[1]
        split = self.eval_splits[dataloader_idx]
        clip_feat = self.clip.embed_image(images).float()
        dino_feat = self.dino(images).float() if self.dino is not None else clip_feat[:, :0]
        store = self._features.setdefault(split, [[], [], []])
        for bucket, value in zip(store, (clip_feat, dino_feat, labels), strict=True):
            bucket.append(value)

    def on_test_epoch_end(self) -> None:
        for split, (clip_f, dino_f, labels) in self._features.items():
            clip_all = self.all_gather(torch.cat(clip_f)).reshape(-1, clip_f[0].shape[-1])
            dino_all = self.all_gather(torch.cat(dino_f)).reshape(-1, dino_f[0].shape[-1])
            y = self.all_gather(torch.cat(labels)).reshape(-1)
            text = self.text.get(self.label_names[split], self.device).T
            dino_in = dino_all if self.dino is not None else None
            result = otfusion_predict(clip_all, text, dino_in, labels=y, **self.fusion_kwargs)
            values = {}
            for k in (1, 5):
                if k <= text.shape[0]:
                    values[f"top{k}"] = topk_accuracy(result.probs, y, k)
                    values[f"clip_top{k}"] = topk_accuracy(result.clip_prior, y, k)
            self.log_dict({f"test/{split}/{k}": v for k, v in values.items()}, sync_dist=False)
        self._features = {}
