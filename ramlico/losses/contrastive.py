"""Symmetric contrastive (CLIP) loss with several positives per image and per caption.

With ``logits`` ``(B, B)`` between images ``i`` and captions ``j`` and a 0/1 matrix ``P`` of true
pairs (``P_ii = 1``)::

    L = 1/2 [ mean_i  sum_j q_ij  (-log softmax_j logits_ij)
            + mean_j  sum_i q'_ij (-log softmax_i logits_ij) ],
    q_ij = P_ij / sum_j P_ij,      q'_ij = P_ij / sum_i P_ij

so a caption that is also true of another image in the batch ("a red object") is not pushed away
from it. With ``P = I`` this is CLIP's loss (open_clip ``ClipLoss``, Radford et al. 2021, Fig. 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["multi_positive_contrastive_loss"]

Tensor = torch.Tensor


def multi_positive_contrastive_loss(logits: Tensor, positives: Tensor) -> Tensor:
    """The loss above for ``(B, B)`` logits and positives -> scalar (fp32).

    Raises:
        ValueError: shapes differ, or a row or column of ``positives`` has no positive.
    """
    if logits.shape != positives.shape or logits.dim() != 2:
        raise ValueError(
            f"logits {tuple(logits.shape)} and positives {tuple(positives.shape)} must be the "
            "same (B, B) matrix"
        )
    pos = positives.to(torch.float32)
    if (pos.sum(0) == 0).any() or (pos.sum(1) == 0).any():
        raise ValueError("every image and every caption needs a positive (P_ii = 1)")
    logits = logits.float()
    rows = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    cols = -(pos / pos.sum(0, keepdim=True) * F.log_softmax(logits, dim=0)).sum(0).mean()
    return 0.5 * (rows + cols)
