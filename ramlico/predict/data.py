"""The DataModule of ``predict.py``: your image files and label list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from ramlico.predict.images import ImageFiles, ImageSource

__all__ = ["PREDICT_SPLIT", "ImagePredictionData"]

#: the split name under which the methods see the label list of a prediction run
PREDICT_SPLIT = "predict"


def _collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, index = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(index)


class ImagePredictionData(L.LightningDataModule):
    """Images (any size and mode) and the labels to score, batched for ``trainer.predict``.

    Args:
        sources: image paths (or in-memory images), in output order.
        labels: the label names to score.
        transform: the model's eval transform.
        batch_size, num_workers: loader settings.
        evidence: ask the method for region evidence (heatmaps).
    """

    eval_splits: list[str] = []

    def __init__(
        self,
        sources: Sequence[ImageSource],
        labels: Sequence[str],
        transform: Any,
        batch_size: int = 16,
        num_workers: int = 0,
        evidence: bool = True,
    ) -> None:
        super().__init__()
        if not labels:
            raise ValueError("no labels to score; pass labels=[...] or labels_file=...")
        self.dataset = ImageFiles(sources, transform)
        self.labels = list(labels)
        self.batch_size, self.num_workers, self.evidence = batch_size, num_workers, evidence

    def label_names(self, split: str) -> list[str]:
        return self.labels

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers, collate_fn=_collate)  # fmt: skip
