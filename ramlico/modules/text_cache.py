"""``TextFeatureCache``: the one cache of text features, used by every method.

Text features cost a text-tower forward per label set (per prompt, per descriptor sentence) and
rarely change, so each method keeps them in one :class:`TextFeatureCache` instead of its own
dicts. An entry is keyed by a tuple whose first element names its *kind* and whose other elements
are everything the value depends on besides frozen weights (label names, templates, device,
dtypes, ...); the caller chooses the key, the cache only stores::

    cache.get(("classifier", device, names, templates), compute)   # computed once
    cache.clear("prompted")       # drop one kind (RAM: its prompts changed in a training step)

Two kinds are built in, for frozen open_clip text towers:

* :meth:`TextFeatureCache.classifier`: ``(D, C)`` zero-shot classifiers (unit prompt embeddings
  averaged over templates and renormalised; CLIP zero-shot, CLIP-Adapter, OTFusion, RAM's
  teacher);
* :meth:`TextFeatureCache.sentence_sets`: ``(K, M_max, D)`` unit embeddings of per-class sentence
  lists with their ``(K, M_max)`` mask (LaZSL's descriptors and baselines).

Not an ``nn.Module`` on purpose: nothing here is checkpointed; entries are rebuilt from the
label names. ``max_entries`` bounds the cache (oldest entry evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import torch

from ramlico.backbones import CLIPBackbone
from ramlico.zeroshot.descriptors import pad_descriptor_embeddings

__all__ = ["TextFeatureCache"]

Tensor = torch.Tensor
T = TypeVar("T")


class TextFeatureCache:
    """Text features computed once per key and reused (see the module docstring).

    Args:
        backbone: the frozen CLIP backbone of :meth:`classifier` / :meth:`sentence_sets`
            (``None`` for a cache of other values only).
        max_entries: keep at most this many entries (oldest evicted first); ``None`` = no bound.
    """

    def __init__(self, backbone: CLIPBackbone | None = None, max_entries: int | None = None):
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        self.backbone = backbone
        self.max_entries = max_entries
        self._store: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()

    def get(self, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """The value of ``key``, from ``compute()`` on first use (``key[0]`` names its kind)."""
        if key in self._store:
            return self._store[key]
        value = compute()
        self._store[key] = value
        if self.max_entries is not None and len(self._store) > self.max_entries:
            self._store.popitem(last=False)
        return value

    def clear(self, kind: Hashable | None = None) -> None:
        """Drop every entry, or those of one ``kind`` (``key[0]``)."""
        if kind is None:
            self._store.clear()
            return
        for key in [k for k in self._store if k[0] == kind]:
            del self._store[key]

    def __len__(self) -> int:
        return len(self._store)

    @staticmethod
    def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
        """``templates`` as a tuple; each needs one ``{}`` for the label name.

        Raises:
            ValueError: no template, or one without ``{}``.
        """
        if not templates or any("{}" not in t for t in templates):
            raise ValueError(f"every prompt template needs one '{{}}', got {list(templates)}")
        return tuple(templates)

    def _tower(self) -> CLIPBackbone:
        if self.backbone is None:
            raise ValueError("this TextFeatureCache has no backbone to encode text with")
        return self.backbone

    def classifier(
        self, names: Sequence[str], templates: Sequence[str], device: torch.device
    ) -> Tensor:
        """``(D, C)`` zero-shot classifier of ``names`` on ``device``
        (:meth:`CLIPBackbone.zero_shot_classifier`, open_clip's recipe).

        Raises:
            ValueError: a template without ``{}``.
        """
        key = ("classifier", str(device), tuple(names), self.check_templates(templates))
        return self.get(
            key, lambda: self._tower().zero_shot_classifier(names, templates).to(device)
        )

    def sentence_sets(
        self, kind: str, classes: Sequence[str], sentences: Callable[[], list[list[str]]],
        device: torch.device,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """``(K, M_max, D)`` unit embeddings of each class's sentences and their mask.

        Args:
            kind: what the sentences are (``"descriptors"``, ``"clip"``, ...), part of the key.
            classes: the ``K`` class names (the key; ``sentences`` must depend on nothing else).
            sentences: called on first use: per class, its sentences.
            device: where the tensors go.
        """

        def encode() -> tuple[Tensor, Tensor]:
            tower = self._tower()
            with torch.no_grad():
                embs = [tower.encode_text(tower.tokenize(s), normalize=True) for s in sentences()]
            feats, mask = pad_descriptor_embeddings(embs)
            return feats.to(device), mask.to(device)

        return self.get((kind, str(device), tuple(classes)), encode)
