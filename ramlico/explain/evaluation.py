"""Insertion/Deletion evaluation of saliency maps over a dataset, with sample PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Subset

from ramlico.explain.saliency import SaliencyExplainer
from ramlico.metrics.saliency import insertion_deletion
from ramlico.utils import get_logger

__all__ = ["evaluate_saliency", "save_saliency_png"]

log = get_logger(__name__)
Tensor = torch.Tensor


def save_saliency_png(image: Tensor, saliency: Tensor, path: Path) -> None:
    """Write ``[image | heatmap overlay]`` side by side; ``image (3, H, W)`` is min-max scaled."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    img = image.detach().float().cpu().permute(1, 2, 0).numpy()
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
    overlay = show_cam_on_image(img.astype(np.float32), saliency.cpu().numpy(), use_rgb=True)
    both = np.concatenate([(img * 255).astype(np.uint8), overlay], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(both).save(path)


def evaluate_saliency(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    methods: Sequence[str] = ("gradcam",),
    num_images: int | None = 2000,
    seed: int = 0,
    step: int | None = None,
    substrate: str = "zeros",
    insertion_start: str = "blur",
    png_dir: str | Path | None = None,
    num_png: int = 8,
    batch_size: int = 16,
) -> dict[str, float]:
    """Mean insertion / deletion AUC (x100) of each saliency method on a seeded image subset.

    Every method is evaluated on the same images; the target class is the model's top-1 on
    the unmodified image (docs/metrics.md, "Insertion and Deletion").

    Args:
        model: classifier with a ``feature_tap`` (see :class:`SaliencyExplainer`), eval mode.
        dataset: ``(image (3, H, W), label)`` items (normalised images; a third element, the
            dataset index, is ignored).
        methods: saliency methods (``gradcam``, ``gradcam++``, ``scorecam``).
        num_images: size of the seeded random subset (``None`` = all images).
        seed: subset seed.
        step, substrate, insertion_start: see :func:`ramlico.metrics.saliency.perturbation_scores`.
        png_dir: where to write ``<method>/<index>.png`` for the first ``num_png`` images.
        batch_size: images per CAM call.
    Returns:
        ``{"saliency/<method>/insertion": ..., ".../deletion": ..., ".../overall": ...}`` in %.
    """
    model.eval()
    size = len(dataset)  # type: ignore[arg-type]  # map-style: Dataset has no __len__ stub
    if num_images is not None and num_images < size:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(size, generator=gen)[:num_images].sort().values.tolist()
        dataset = Subset(dataset, idx)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    device = next(model.parameters()).device
    results: dict[str, float] = {}
    for method in methods:
        explainer = SaliencyExplainer(model, method)
        sums = {"insertion": 0.0, "deletion": 0.0}
        count = 0
        for batch in loader:  # (image, label[, dataset index]) items
            images = batch[0].to(device)
            with torch.no_grad():
                targets = model(images).argmax(-1).tolist()
            maps = explainer(images, targets)
            for img, sal, tgt in zip(images, maps, targets, strict=True):
                scores = insertion_deletion(
                    model, img, sal.to(device), step, substrate, insertion_start, tgt
                )
                sums["insertion"] += scores["insertion"]
                sums["deletion"] += scores["deletion"]
                if png_dir is not None and count < num_png:
                    save_saliency_png(img, sal, Path(png_dir) / method / f"{count:04d}.png")
                count += 1
        ins, dele = 100 * sums["insertion"] / count, 100 * sums["deletion"] / count
        results.update({
            f"saliency/{method}/insertion": ins,
            f"saliency/{method}/deletion": dele,
            f"saliency/{method}/overall": ins - dele,
        })  # fmt: skip
        log.info("%s on %d images: insertion %.2f, deletion %.2f", method, count, ins, dele)
    return results
