"""Per-split text classifiers from a frozen CLIP text tower, computed once and cached."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ramlico.backbones import CLIPBackbone

__all__ = ["TextClassifierCache"]


class TextClassifierCache:
    """Builds ``(D, C)`` zero-shot classifiers for label sets and keeps them per (split, device).

    The text tower is frozen, so a label set's classifier never changes: it is computed on first
    use (``CLIPBackbone.zero_shot_classifier``: unit prompt embeddings averaged over templates
    and renormalised) and reused every step. Not an ``nn.Module`` on purpose: nothing here is
    checkpointed, the classifiers are rebuilt from the label names.

    Args:
        backbone: the frozen CLIP backbone.
        templates: prompt templates with one ``{}``.
    """

    def __init__(self, backbone: CLIPBackbone, templates: Sequence[str]) -> None:
        if not templates or any("{}" not in t for t in templates):
            raise ValueError(f"every prompt template needs one '{{}}', got {list(templates)}")
        self.backbone = backbone
        self.templates = tuple(templates)
        self._cache: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}

    def get(self, names: Sequence[str], device: torch.device) -> torch.Tensor:
        """``(D, C)`` classifier of ``names`` on ``device``."""
        key = (str(device), tuple(names))
        weights = self._cache.get(key)
        if weights is None:
            weights = self.backbone.zero_shot_classifier(names, self.templates).to(device)
            self._cache[key] = weights
        return weights

    def clear(self) -> None:
        self._cache.clear()
