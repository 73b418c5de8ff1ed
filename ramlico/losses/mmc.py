"""Multi-label multi-class contrastive (MMC) loss of RAM (docs/ram.md, "Scores and loss").

One softmax over *all* image-label entries of the batch; the loss is the mean negative
log-probability of the positive entries::

    L(s, Y) = LSE_k s_k - (1 / |P|) * sum_{j in P} s_j,      P = {j : Y_j = 1},  k over B*C entries

The gradient is ``softmax(s)_j - [j in P] / |P|``. With no positive in the batch the loss is 0 with
zero gradient (the reference divides by ``max(|P|, 1)``). ``per_sample=True`` is the "MMC w/o
batch" ablation (Table 10): one softmax per image row, averaged over all positives.
"""

from __future__ import annotations

import torch

__all__ = ["mmc_loss"]

Tensor = torch.Tensor


def mmc_loss(logits: Tensor, targets: Tensor, *, per_sample: bool = False) -> Tensor:
    """MMC loss of ``(B, C)`` logits against ``(B, C)`` multi-hot targets -> scalar.

    Args:
        logits: ``(B, C)`` scores (any float dtype; computed in fp32 at least).
        targets: ``(B, C)`` 0/1 labels (bool, int or float).
        per_sample: softmax per row instead of over the whole batch (ablation).

    Returns:
        scalar loss. Worked example: ``s = [[2, 0, 1], [0.5, 1.5, 0]]``,
        ``Y = [[1, 0, 1], [0, 1, 0]]`` -> 1.403494 (batch), 0.759860 (per sample).

    Raises:
        ValueError: shapes differ, not 2-D, or the logits hold NaN/Inf.
    """
    if logits.dim() != 2 or logits.shape != targets.shape:
        raise ValueError(
            f"mmc_loss expects (B, C) logits and targets of the same shape, got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if not torch.isfinite(logits).all():
        raise ValueError("mmc_loss: logits contain NaN or Inf (check the temperatures)")
    s = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    pos = targets.to(s.dtype)
    n_pos = pos.sum().clamp_min(1.0)
    if per_sample:
        log_prob = torch.log_softmax(s, dim=1)
    else:
        log_prob = s - torch.logsumexp(s.reshape(-1), dim=0)
    return -(log_prob * pos).sum() / n_pos
