"""The DataModule of ``predict.py``: your image files and label list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ramlico.data.base import RamlicoDataModule
from ramlico.data.transforms import CLIP_MEAN, CLIP_STD
from ramlico.predict.images import ImageFiles, ImageSource

__all__ = ["PREDICT_SPLIT", "ImagePredictionData"]

#: the split name under which the methods see the label list of a prediction run
PREDICT_SPLIT = "predict"


def _collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, index = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(index)


class ImagePredictionData(RamlicoDataModule):
    """Images (any size and mode) and the labels to score, batched for ``trainer.predict``.

    Args:
        sources: image paths (or in-memory images), in output order.
        labels: the label names to score.
        transform: the model's eval transform.
        batch_size, num_workers: loader settings.
        evidence: ask the method for region evidence (heatmaps).
        normalization: ``(mean, std)`` of ``transform`` (for the typed interface).
    """

    def __init__(
        self,
        sources: Sequence[ImageSource],
        labels: Sequence[str],
        transform: Any,
        batch_size: int = 16,
        num_workers: int = 0,
        evidence: bool = True,
        normalization: tuple[Sequence[float], Sequence[float]] = (CLIP_MEAN, CLIP_STD),
    ) -> None:
        super().__init__()
        if not labels:
            raise ValueError("no labels to score; pass labels=[...] or labels_file=...")
        self.dataset = ImageFiles(sources, transform)
        self.labels = list(labels)
        self.batch_size, self.num_workers, self.evidence = batch_size, num_workers, evidence
        self._normalization = normalization

    @property
    def eval_splits(self) -> list[str]:
        return []  # prediction only: no test split

    @property
    def dataset_name(self) -> str:
        return "images"  # your own images

    @property
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        return self._normalization

    def label_names(self, split: str) -> list[str]:
        return self.labels

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers, collate_fn=_collate)  # fmt: skip
