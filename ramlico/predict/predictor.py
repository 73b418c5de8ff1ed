"""The Python API: ``predictor = ramlico.load_predictor(ckpt_or_experiment)``.

::

    import ramlico
    predictor = ramlico.load_predictor("logs/train/runs/<date>/checkpoints/last.ckpt")
    for p in predictor(["cat.jpg", "street.png"], labels=["cat", "dog", "car"]):
        print(p.image, p.tags, p.probabilities)      # tags above the calibrated threshold
        p.overlay("cat").save("cat_heatmap.png")      # where "cat" matched (RAM: the OT plan)

A checkpoint rebuilds everything from itself: the model (config + trainable weights; frozen
backbones from their config), the preprocessing (image size, mean, std of the run's data
config), the label lists it was trained and tested on (the default ``labels``), and the
calibration fitted on its validation split (probabilities and thresholds). An experiment name
(e.g. ``"clip_zeroshot_demo"``, ``"lazsl_demo"``) builds a training-free method from the shipped
configs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ramlico.explain.heatmaps import heatmap_box, heatmap_overlay, heatmap_peak
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.predict.calibration import Calibration
from ramlico.predict.images import ImageFiles, ImageSource, load_image
from ramlico.utils import get_logger

__all__ = ["Prediction", "Predictor", "load_predictor", "make_predictions", "select_tags"]

log = get_logger(__name__)
Tensor = torch.Tensor


@dataclass
class Prediction:
    """What the model says about one image.

    Attributes:
        image: the input's path (or ``image_<i>`` for in-memory images).
        size: ``(W, H)`` of the (upright) original image.
        labels: the ``C`` label names scored.
        scores: ``(C,)`` the method's raw scores (what metrics rank).
        probabilities: ``(C,)`` calibrated per-label probabilities.
        thresholds: ``(C,)`` the tag threshold of each label.
        tags: labels tagged (``probability >= threshold``, or the ``top_k``), most probable first.
        heatmaps: ``(C, h, w)`` region evidence per label, or ``None`` (method without it).
        panel: an explanation picture (LaZSL's descriptor/crop panel), or ``None``.
    """

    image: str
    size: tuple[int, int]
    labels: list[str]
    scores: np.ndarray
    probabilities: np.ndarray
    thresholds: np.ndarray
    tags: list[str]
    heatmaps: np.ndarray | None = None
    panel: Image.Image | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def heatmap(self, label: str) -> np.ndarray:
        """``(h, w)`` evidence map of ``label``."""
        if self.heatmaps is None:
            raise ValueError(f"{self.image}: this method gives no region evidence (heatmaps)")
        return self.heatmaps[self.labels.index(label)]

    def peak(self, label: str) -> tuple[float, float]:
        """``(x, y)`` in original-image pixels where ``label``'s evidence peaks."""
        return heatmap_peak(self.heatmap(label), self.size)

    def overlay(
        self, label: str, image: ImageSource | None = None, alpha: float = 0.5
    ) -> Image.Image:
        """The image with ``label``'s heatmap blended over it (``image`` defaults to the path)."""
        base = load_image(self.image if image is None else image)
        return heatmap_overlay(base, self.heatmap(label), alpha=alpha)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict: image, size, tags, and per label score / probability / threshold
        (plus, where there is evidence, the heatmap's peak and a coarse box in image pixels:
        the cells at >= half the peak)."""
        per_label = {}
        for c, name in enumerate(self.labels):
            entry: dict[str, Any] = {
                "score": float(self.scores[c]),
                "probability": float(self.probabilities[c]),
                "threshold": float(self.thresholds[c]),
            }
            if self.heatmaps is not None:
                x, y = heatmap_peak(self.heatmaps[c], self.size)
                entry["peak_xy"] = [round(float(x), 1), round(float(y), 1)]
                box = heatmap_box(self.heatmaps[c], self.size)
                entry["box_xyxy"] = [round(float(v), 1) for v in box]
            per_label[name] = entry
        return {"image": self.image, "width": self.size[0], "height": self.size[1],
                "tags": list(self.tags), "labels": per_label, **self.extra}  # fmt: skip


def select_tags(
    probabilities: Tensor, thresholds: Tensor, top_k: int | None = None
) -> list[list[int]]:
    """Per image, the label indices tagged, most probable first.

    ``probabilities (B, C)`` at or above ``thresholds (C,)``; with ``top_k`` at most the ``k``
    most probable of those. ``top_k`` together with ``thresholds`` of 0 gives exactly the top k.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (or None), got {top_k}")
    order = probabilities.argsort(dim=-1, descending=True)
    above = probabilities >= thresholds.to(probabilities)
    tags = []
    for b in range(probabilities.shape[0]):
        picked = [int(c) for c in order[b] if above[b, c]]
        tags.append(picked[:top_k] if top_k is not None else picked)
    return tags


def make_predictions(
    out: LabelScores,
    labels: Sequence[str],
    calibration: Calibration,
    names: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    threshold: float | None = None,
    top_k: int | None = None,
) -> list[Prediction]:
    """Turn one batch's :class:`LabelScores` into :class:`Prediction` objects.

    Args:
        out: scores / logits ``(B, C)`` and optional heatmaps ``(B, C, h, w)`` and panels.
        labels: the ``C`` label names. calibration: probabilities and thresholds.
        names, sizes: each image's name and original ``(W, H)``.
        threshold: one threshold for every label instead of the calibrated ones.
        top_k: at most this many tags per image (``threshold`` still applies if given;
            with ``top_k`` alone, the top ``k`` whatever their probability).
    """
    probs = calibration.probabilities(out.logits.detach()).cpu()
    if threshold is not None:
        thresholds = torch.full((len(labels),), float(threshold))
    elif top_k is not None:
        thresholds = torch.zeros(len(labels))
    else:
        thresholds = calibration.thresholds(labels)
    tags = select_tags(probs, thresholds, top_k)
    scores = out.scores.detach().float().cpu().numpy()
    heat = out.heatmaps.detach().float().cpu().numpy() if out.heatmaps is not None else None
    return [
        Prediction(
            image=names[b], size=(int(sizes[b][0]), int(sizes[b][1])), labels=list(labels),
            scores=scores[b],
            probabilities=probs[b].numpy(), thresholds=thresholds.numpy(),
            tags=[labels[c] for c in tags[b]], heatmaps=heat[b] if heat is not None else None,
            panel=out.panels[b] if out.panels is not None else None,
        )  # fmt: skip
        for b in range(len(names))
    ]


class Predictor:
    """Tags, probabilities and region evidence for any images and label list.

    Args:
        model: a ramlico method (scoring contract), weights loaded.
        transform: RGB PIL image -> ``(3, S, S)`` model input (the run's eval transform).
        calibration: probabilities and thresholds (``None`` = uncalibrated ``sigmoid(logit)``,
            threshold 0.5).
        labels: the default label list (a checkpoint's test labels).
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        precision: ``"bf16"`` (autocast; default on CUDA) or ``"32"`` (default on CPU).
        batch_size: images per forward.
    """

    def __init__(
        self,
        model: RamlicoModule,
        transform: Any,
        calibration: Calibration | None = None,
        labels: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        precision: str | None = None,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = precision or ("bf16" if self.device.type == "cuda" else "32")
        if self.precision not in ("bf16", "32"):
            raise ValueError(f"precision must be 'bf16' or '32', got {self.precision!r}")
        self.model = model.to(self.device).eval()
        self.transform = transform
        self.calibration = calibration or Calibration()
        self.labels = list(labels) if labels else None
        self.batch_size = batch_size
        if not self.calibration.fitted:
            log.warning(
                "no calibration: probabilities are sigmoid(logit) and tags use threshold 0.5; "
                "a checkpoint trained with the calibration callback carries calibrated ones, or "
                "call predictor.calibrate(...)"
            )

    def _labels(self, labels: Sequence[str] | None) -> list[str]:
        names = list(labels) if labels else self.labels
        if not names:
            raise ValueError("no labels: pass labels=[...] (this model has no default label list)")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"labels contain duplicates {dupes}; list each label once")
        return names

    def label_scores(self, images: Tensor, labels: Sequence[str], evidence: bool) -> LabelScores:
        """One batch of model inputs ``(B, 3, S, S)`` -> :class:`LabelScores` (on the CPU)."""
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else nullcontext()
        )
        with torch.no_grad(), autocast:
            out = self.model.label_scores(images.to(self.device), list(labels), evidence=evidence)
        return LabelScores(
            scores=out.scores.float().cpu(), logits=out.logits.float().cpu(),
            heatmaps=out.heatmaps.float().cpu() if out.heatmaps is not None else None,
            panels=out.panels,
        )  # fmt: skip

    def logits(self, images: Sequence[ImageSource], labels: Sequence[str]) -> Tensor:
        """``(N, C)`` per-label logits of ``images`` (what calibration is fitted on)."""
        out = []
        for start in range(0, len(images), self.batch_size):
            pil = [load_image(s) for s in images[start : start + self.batch_size]]
            x = torch.stack([self.transform(im) for im in pil])
            out.append(self.label_scores(x, labels, evidence=False).logits)
        return torch.cat(out)

    def calibrate(
        self,
        images: Sequence[ImageSource],
        targets: Tensor,
        labels: Sequence[str] | None = None,
        mode: str = "global",
    ) -> Calibration:
        """Fit probabilities and thresholds on labelled validation images; use them from now on.

        Args:
            images: validation images. targets: ``(N, C)`` 0/1 ground truth over ``labels``.
            mode: ``"global"`` or ``"per_label"`` thresholds.
        """
        from ramlico.predict.calibration import fit_calibration

        names = self._labels(labels)
        logits = self.logits(list(images), names)
        targets = torch.as_tensor(targets).float()
        info = {"source": "Predictor.calibrate"}
        self.calibration = fit_calibration(logits, targets, names, mode=mode, info=info)
        return self.calibration

    def __call__(
        self,
        images: ImageSource | Sequence[ImageSource],
        labels: Sequence[str] | None = None,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        heatmaps: bool = True,
        progress: bool | None = None,
    ) -> list[Prediction]:
        """Tag ``images`` (paths, PIL images, arrays or tensors; one or a list) with ``labels``.

        Args:
            threshold: one tag threshold for all labels (overrides the calibrated ones).
            top_k: at most ``k`` tags per image (alone: exactly the ``k`` most probable).
            heatmaps: compute region evidence (methods that have it).
            progress: show a progress bar (default: when there is more than one batch).

        Returns:
            one :class:`Prediction` per image, in input order.
        """
        sources: list[Any]
        if isinstance(images, (str, Path, Image.Image, np.ndarray)) or (
            isinstance(images, torch.Tensor) and images.dim() != 4
        ):
            sources = [images]  # one image
        else:
            sources = list(images)  # a list, or a (B, 3, H, W) tensor
        names = self._labels(labels)
        data = ImageFiles(sources, self.transform)
        batches = range(0, len(data), self.batch_size)
        show = progress if progress is not None else len(batches) > 1
        results: list[Prediction] = []
        for start in _progress(batches, show, "tagging"):
            pil = [load_image(s) for s in sources[start : start + self.batch_size]]
            x = torch.stack([self.transform(im) for im in pil])
            out = self.label_scores(x, names, heatmaps)
            results += make_predictions(
                out, names, self.calibration,
                [data.name(i) for i in range(start, start + len(pil))],
                [im.size for im in pil], threshold=threshold, top_k=top_k,
            )  # fmt: skip
        return results


def _progress(items: Sequence[Any] | range, show: bool, what: str) -> Iterator[Any]:
    if not show:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=what, total=len(items))


def load_predictor(
    source: str | Path,
    overrides: Sequence[str] = (),
    device: str | None = None,
    precision: str | None = None,
    batch_size: int = 16,
    ema: bool | None = None,
) -> Predictor:
    """A :class:`Predictor` from a checkpoint file or an experiment name (module docstring).

    Args:
        source: ``.../checkpoints/last.ckpt`` (any method trained with ``train.py``) or the name
            of a training-free experiment (``clip_zeroshot_demo``, ``lazsl_demo``, ...).
        overrides: Hydra overrides for an experiment (``["model.backbone.pretrained=/w.pt"]``).
        device, precision, batch_size: see :class:`Predictor`.
        ema: a checkpoint's EMA average (``True``), live weights (``False``), or as it validated.

    Raises:
        FileNotFoundError: neither a checkpoint file nor a shipped experiment.
        ValueError: an experiment of a trained method (pass its checkpoint instead).
    """
    from ramlico.predict.build import build_from_checkpoint, build_from_experiment

    path = Path(source)
    if path.suffix == ".ckpt" or path.is_file():
        built = build_from_checkpoint(path, ema=ema)
    else:
        built = build_from_experiment(str(source), overrides)
    return Predictor(
        built.model, built.transform, built.calibration, built.labels, device=device,
        precision=precision, batch_size=batch_size,
    )  # fmt: skip
