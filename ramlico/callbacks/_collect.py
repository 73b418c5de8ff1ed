"""Shared by the evaluation callbacks: collect a stage's per-batch scores, gather over ranks."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ramlico.utils.distributed import all_gather_objects as gather_objects

Tensor = torch.Tensor


def one_hot_targets(targets: Tensor, n_labels: int) -> Tensor:
    """``(B, C)`` 0/1 targets from multi-hot ``(B, C)`` or class indices ``(B,)``."""
    if targets.dim() == 1:
        return torch.nn.functional.one_hot(targets.long(), n_labels).float()
    return targets.float()


def batch_indices(loader: Any) -> list[list[int]]:
    """Dataset indices of every batch of ``loader`` on this rank (its batch sampler's order)."""
    sampler = getattr(loader, "batch_sampler", None)
    if sampler is None:
        raise ValueError("the evaluation loader has no batch sampler; cannot index its images")
    return [list(map(int, b)) for b in sampler]


def image_path(dataset: Dataset, index: int) -> str:
    """The file behind item ``index`` of a ramlico dataset (``""`` if it has none)."""
    while isinstance(dataset, Subset):
        index = int(dataset.indices[index])
        dataset = dataset.dataset
    records = getattr(dataset, "records", None)
    if records is not None:
        return str(records[index].image)
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return str(samples[index][0])
    return ""


class SplitCollector:
    """Per split: the dataset indices, scores, logits and targets of every evaluated batch."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, list[Any]]] = {}

    def add(self, split: str, outputs: dict[str, Any], indices: list[int] | None = None) -> None:
        keys = ("index", "scores", "logits", "targets")
        part = self.parts.setdefault(split, {k: [] for k in keys})
        n = outputs["scores"].shape[0]
        part["index"].append(torch.tensor(indices if indices is not None else [-1] * n))
        for key in ("scores", "logits", "targets"):
            part[key].append(outputs[key].detach().float().cpu())

    def gathered(self) -> dict[str, dict[str, Tensor]]:
        """Every rank's batches of each split, concatenated and sorted by dataset index."""
        local = {s: {k: torch.cat(v) for k, v in p.items()} for s, p in self.parts.items()}
        merged: dict[str, dict[str, list[Tensor]]] = {}
        for rank_parts in gather_objects(local):
            for split, part in rank_parts.items():
                slot = merged.setdefault(split, {k: [] for k in part})
                for k, v in part.items():
                    slot[k].append(v)
        out = {}
        for split, part in merged.items():
            cat = {k: torch.cat(v) for k, v in part.items()}
            order = torch.argsort(cat["index"], stable=True)
            out[split] = {k: v[order] for k, v in cat.items()}
        return out

    def clear(self) -> None:
        self.parts = {}
