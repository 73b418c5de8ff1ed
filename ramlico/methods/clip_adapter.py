"""CLIP-Adapter for open-vocabulary multi-label recognition: the small trainable baseline.

A residual adapter on the frozen CLIP image embedding is trained on the seen labels with binary
cross-entropy; labels are scored by cosine similarity with their frozen prompt embeddings, so
the model scores any label set (ZSL unseen, GZSL) at test time::

    z = adapter(CLIP_img(x)),   s_c = tau * cos(z, w_c) + bias,   loss = BCE(s, y)

It is also the demo experiment (``clip_adapter_demo``): it trains in seconds on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.methods.base import RamlicoModule
from ramlico.modules import ResidualAdapter, TextFeatureCache
from ramlico.utils.optim import check_factory

__all__ = ["CLIPAdapter"]

Tensor = torch.Tensor


class CLIPAdapter(RamlicoModule):
    """Frozen CLIP + trainable residual adapter, BCE on seen labels.

    Args:
        backbone: frozen :class:`CLIPBackbone`.
        optimizer: ``_partial_`` optimiser factory (called with the trainable parameters).
        scheduler: optional ``_partial_`` LR-scheduler factory (called with the optimiser).
        templates: prompt templates.
        reduction, alpha: adapter shape (see :class:`ResidualAdapter`).
        init_scale: initial temperature ``tau`` of the cosine scores (learned, in log space).
        ks: ``k`` of P/R/F1@k.
    """

    def __init__(
        self,
        backbone: CLIPBackbone,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        templates: Sequence[str] = ("a photo of a {}.",),
        reduction: float = 0.25,
        alpha: float = 0.2,
        init_scale: float = 10.0,
        ks: Sequence[int] = (3, 5),
    ) -> None:
        super().__init__(ks=ks)
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"], logger=False)
        self.backbone = backbone
        check_factory("model.optimizer", optimizer, bound=("params",))
        if scheduler is not None:
            check_factory("model.scheduler", scheduler, bound=("optimizer",))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.adapter = ResidualAdapter(backbone.embed_dim, reduction=reduction, alpha=alpha)
        self.log_scale = nn.Parameter(torch.tensor(float(init_scale)).log())
        self.bias = nn.Parameter(torch.zeros(()))
        self.templates = TextFeatureCache.check_templates(templates)
        self.text = TextFeatureCache(backbone)

    def scores(self, images: Tensor, label_names: Sequence[str]) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, C)`` BCE logits over ``label_names`` (no region evidence)."""
        with torch.no_grad():
            image = self.backbone.embed_image(images)
        z = F.normalize(self.adapter(image.float()), dim=-1)
        weights = self.text.classifier(label_names, self.templates, self.device).to(z.dtype)
        return self.log_scale.exp() * z @ weights + self.bias

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, targets = batch[0], batch[1]
        logits = self.scores(images, self.label_names["train"])
        loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}
