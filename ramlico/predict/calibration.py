"""Per-label probabilities and tag thresholds, fitted on a validation split.

A method's per-label logit ``z`` (:attr:`ramlico.methods.base.LabelScores.logits`; for RAM
``(s_glb + C s_loc) / 2``, for CLIP ``logit_scale * cos``, for CLIP-Adapter its BCE logit) becomes a
probability by Platt scaling, one ``(a, b)`` shared by every label so that it also applies to
labels never seen in validation::

    p = sigmoid(a z + b),   (a, b) = argmin  mean_{i,c} BCE(sigmoid(a z_ic + b), y_ic)

Tags are the labels with ``p >= t``. The threshold ``t`` maximises F1 on the validation split:
``"global"`` one ``t`` for all labels (micro-F1 over every image-label pair), ``"per_label"`` one
``t_c`` per label that has at least ``min_positives`` positives there (others use the global one).
Without a fitted calibration, ``p = sigmoid(z)`` and ``t = 0.5`` (uncalibrated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

__all__ = ["MODES", "Calibration", "f1_optimal_threshold", "fit_calibration", "fit_platt", "tag_f1"]

Tensor = torch.Tensor
MODES = ("global", "per_label")


@dataclass
class Calibration:
    """Platt scaling ``p = sigmoid(scale * z + bias)`` and F1-optimal tag thresholds.

    Attributes:
        scale, bias: Platt parameters (``1, 0`` = uncalibrated ``sigmoid(z)``).
        threshold: global tag threshold on ``p``.
        per_label: label name -> its own threshold (``mode="per_label"``).
        mode: ``"global"`` or ``"per_label"``.
        fitted: whether this was fitted on data (``False`` = the uncalibrated default).
        info: where it was fitted (split, images, labels) and its validation F1.
    """

    scale: float = 1.0
    bias: float = 0.0
    threshold: float = 0.5
    per_label: dict[str, float] = field(default_factory=dict)
    mode: str = "global"
    fitted: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"calibration mode must be one of {MODES}, got {self.mode!r}")

    def probabilities(self, logits: Tensor) -> Tensor:
        """``(..., C)`` logits -> probabilities in (0, 1), fp32."""
        return torch.sigmoid(self.scale * logits.float() + self.bias)

    def thresholds(self, label_names: Sequence[str]) -> Tensor:
        """``(C,)`` threshold of each label (its own in ``per_label`` mode, else the global)."""
        own = self.per_label if self.mode == "per_label" else {}
        return torch.tensor([own.get(n, self.threshold) for n in label_names])

    def to_dict(self) -> dict[str, Any]:
        """Plain containers (checkpoint- and JSON-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibration:
        """Inverse of :meth:`to_dict`; ``None`` gives the uncalibrated default."""
        if not data:
            return cls()
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            allowed = sorted(cls.__dataclass_fields__)
            raise ValueError(f"unknown calibration keys {unknown}; allowed: {allowed}")
        return cls(**data)


def fit_platt(logits: Tensor, targets: Tensor, l2: float = 1e-4) -> tuple[float, float]:
    """Logistic regression of ``targets`` on ``logits`` (both flattened): ``(scale, bias)``.

    Minimises the mean binary cross-entropy plus ``l2 * scale^2`` (keeps ``scale`` finite when
    the classes separate) by L-BFGS in float64, starting from the standardised fit.
    """
    z = logits.detach().double().flatten()
    y = targets.detach().double().flatten()
    if z.numel() != y.numel() or z.numel() == 0:
        raise ValueError(f"need as many logits as targets (> 0), got {z.numel()}, {y.numel()}")
    if y.min() == y.max():
        raise ValueError("calibration needs positives and negatives in the validation targets")
    mean, std = z.mean(), z.std().clamp_min(1e-12)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        u = (z - mean) / std
        loss = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * u + params[1], y)
        loss = loss + l2 * (params[0] / std) ** 2
        loss.backward()
        return loss

    opt.step(closure)
    a_std, b_std = params.detach().tolist()
    scale = a_std / float(std)
    return scale, b_std - scale * float(mean)


def f1_optimal_threshold(probs: Tensor, targets: Tensor) -> tuple[float, float]:
    """The threshold ``t`` maximising F1 of "positive iff ``p >= t``" and that F1 (in [0, 1]).

    Every distinct value of ``probs`` is a candidate; ties in F1 take the largest ``t``. With no
    positive in ``targets`` the threshold is above every probability (F1 = 0).
    """
    p = probs.detach().double().flatten()
    y = targets.detach().double().flatten()
    n_pos = float(y.sum())
    if n_pos == 0:
        return float(min(1.0, float(p.max()) + 1e-6)) if p.numel() else 1.0, 0.0
    order = torch.argsort(p, descending=True)
    p, y = p[order], y[order]
    tp = torch.cumsum(y, 0)
    k = torch.arange(1, p.numel() + 1, dtype=torch.float64)
    # only cut where the next value differs (a threshold keeps all ties together)
    last = torch.ones_like(p, dtype=torch.bool)
    last[:-1] = p[:-1] != p[1:]
    f1 = torch.where(last, 2 * tp / (k + n_pos), torch.zeros_like(tp))
    best = int(torch.argmax(f1))
    return float(p[best]), float(f1[best])


def tag_f1(probs: Tensor, targets: Tensor, thresholds: Tensor | float) -> float:
    """Micro-F1 (in [0, 1]) of the tags ``probs >= thresholds`` over every image-label pair."""
    pred = probs >= torch.as_tensor(thresholds, dtype=probs.dtype)
    y = targets.bool()
    tp = float((pred & y).sum())
    denom = float(pred.sum() + y.sum())
    return 2 * tp / denom if denom else 0.0


def fit_calibration(
    logits: Tensor,
    targets: Tensor,
    label_names: Sequence[str],
    mode: str = "global",
    min_positives: int = 3,
    info: dict[str, Any] | None = None,
) -> Calibration:
    """Fit Platt scaling and the F1-optimal threshold(s) on validation logits.

    Args:
        logits: ``(N, C)`` per-label logits of ``N`` validation images.
        targets: ``(N, C)`` 0/1 ground truth.
        label_names: the ``C`` label names (per-label thresholds are keyed by name).
        mode: ``"global"`` or ``"per_label"`` (see the module docstring).
        min_positives: validation positives a label needs for its own threshold.
        info: extra fields recorded in :attr:`Calibration.info`.

    Raises:
        ValueError: shapes disagree, or the targets have no positive or no negative.
    """
    if logits.shape != targets.shape or logits.dim() != 2 or logits.shape[1] != len(label_names):
        raise ValueError(
            f"logits and targets must be (N, C) with C = {len(label_names)} label names; got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    scale, bias = fit_platt(logits, targets)
    cal = Calibration(scale=scale, bias=bias, mode=mode, fitted=True)
    probs = cal.probabilities(logits)
    cal.threshold, _ = f1_optimal_threshold(probs, targets)
    if mode == "per_label":
        for c, name in enumerate(label_names):
            if int(targets[:, c].sum()) >= min_positives:
                cal.per_label[name] = f1_optimal_threshold(probs[:, c], targets[:, c])[0]
    cal.info = {
        **(info or {}),
        "images": int(logits.shape[0]),
        "labels": len(label_names),
        "tag_f1": 100 * tag_f1(probs, targets, cal.thresholds(label_names)),
        "tag_f1_at_0.5": 100 * tag_f1(probs, targets, 0.5),
    }
    return cal
