"""Post-hoc saliency maps through the ``grad-cam`` package (pytorch-grad-cam).

LICO evaluates *unchanged* post-hoc methods on the baseline and on the LICO-trained network
(LICO's saliency methods), so the CAMs here are thin adapters, not re-implementations:

* target layer = the classifier's ``cam_layer`` if it has one, else its ``feature_tap`` (the last
  feature map, LICO's tap point: ResNet
  ``layer4`` output after its ReLU);
* target class = the model's top-1 on the unmodified image (or given labels);
* Grad-CAM: ``S = ReLU(sum_k w_k A_k)``, ``w_k = mean_p d s_c / d A_k,p`` with ``s_c`` the logit;
  bilinearly upsampled to the input and min-max normalised to [0, 1] (by the package).

ViT token maps ``(B, L, D)`` are reshaped to ``(B, D, h, w)`` after dropping prefix tokens. (For
ViTs :class:`ramlico.methods.lico.LICOClassifier` names the last block's first LayerNorm as its
``cam_layer``: the final-norm patch tokens get no gradient when the class token is pooled.)

:func:`gradcam_per_class` gives the same Grad-CAM for *several* classes of every image at the cost
of one forward pass: the graph is cut at the target layer, so each class's gradient flows back
through the head only (the package runs a forward and a full backward per class). The region
evidence and ``ramlico-predict`` use it (one map per label); it equals the package's maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ramlico.explain.heatmaps import patch_grid

__all__ = ["CAM_METHODS", "SaliencyExplainer", "cam_target_layer", "gradcam_per_class"]

Tensor = torch.Tensor


def _cam_classes() -> dict[str, type]:
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}


CAM_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "scorecam")


class _TokenGrid:
    """Reshape ``(B, L, D)`` tokens (prefix dropped) into a ``(B, D, h, w)`` grid."""

    def __init__(self, num_prefix_tokens: int) -> None:
        self.num_prefix_tokens = num_prefix_tokens

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            return x
        return patch_grid(x[:, self.num_prefix_tokens :])


def cam_target_layer(model: nn.Module) -> nn.Module:
    """The layer whose activations and gradients make the CAM: ``model.cam_layer``, else
    ``model.feature_tap``.

    Raises:
        ValueError: the model has neither.
    """
    layer = getattr(model, "cam_layer", None)
    if layer is None:
        layer = getattr(model, "feature_tap", None)
    if layer is None:
        raise ValueError(
            f"{type(model).__name__} has no 'feature_tap' module (the Grad-CAM target layer); "
            "wrap the network like ramlico.methods.lico.LICOClassifier"
        )
    return layer


class SaliencyExplainer:
    """Saliency maps of a classifier with a target layer (e.g. ``LICOClassifier``).

    Args:
        model: ``(B, 3, H, W) -> (B, K)`` classifier; must expose ``feature_tap`` or
            ``cam_layer`` (the target layer, :func:`cam_target_layer`) and may expose
            ``num_prefix_tokens`` (ViTs).
        method: one of :data:`CAM_METHODS`.
        score_cam_batch_size: masked images per forward in Score-CAM.
    Raises:
        ValueError: unknown method, or a model without a target layer.
    """

    def __init__(self, model: nn.Module, method: str = "gradcam", score_cam_batch_size: int = 32):
        classes = _cam_classes()
        if method not in classes:
            raise ValueError(f"unknown saliency method {method!r}; choose one of {CAM_METHODS}")
        layer = cam_target_layer(model)
        reshape = _TokenGrid(int(getattr(model, "num_prefix_tokens", 0)))
        self.method = method
        self.model = model
        self.cam = classes[method](model=model, target_layers=[layer], reshape_transform=reshape)
        if method == "scorecam":
            self.cam.batch_size = score_cam_batch_size

    def __call__(self, images: Tensor, targets: Sequence[int] | None = None) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, H, W)`` float32 saliency in [0, 1] (CPU).

        Args:
            images: normalised images.
            targets: class per image; ``None`` = the model's top-1 predictions.
        """
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        self.model.eval()
        if targets is None:
            with torch.no_grad():
                targets = self.model(images).argmax(-1).tolist()
        cams = self.cam(images, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        return torch.from_numpy(cams).float()


def gradcam_per_class(model: nn.Module, images: Tensor, classes: Sequence[int]) -> Tensor:
    """Grad-CAM of every image for each of ``classes``: ``(B, 3, H, W)`` -> ``(B, C, H, W)``.

    One forward pass with the graph cut at the target layer (:func:`cam_target_layer`): its
    output ``A`` (``(B, K, h,
    w)``; ViT tokens reshaped as in :class:`SaliencyExplainer`) becomes a leaf, and for each class
    ``c`` the gradient of ``sum_b s_c(b)`` reaches ``A`` through the layers after the tap only.
    In eval mode images do not interact, so this is each image's own ``d s_c / d A``. Then, as
    the package does: ``w_k = mean_p d s_c / d A_k,p``, ``S = ReLU(sum_k w_k A_k)``, min-max scaled,
    bilinearly resized to ``(H, W)`` and min-max scaled again (values in [0, 1], float32, CPU).

    Args:
        model: classifier with a ``feature_tap`` or ``cam_layer`` module (and
            ``num_prefix_tokens`` for ViTs).
        images: ``(B, 3, H, W)`` normalised images.
        classes: class indices, one map each.
    Raises:
        ValueError: a model without a target layer, or a class outside the model's output.
    """
    from pytorch_grad_cam.utils.image import scale_cam_image

    layer = cam_target_layer(model)
    reshape = _TokenGrid(int(getattr(model, "num_prefix_tokens", 0)))
    cut: list[Tensor] = []

    def leaf(module: nn.Module, inputs: object, output: Tensor) -> Tensor:
        cut.append(output.detach().requires_grad_(True))
        return cut[-1]

    was_training = model.training
    model.eval()
    handle = layer.register_forward_hook(leaf)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            logits = model(images.clone())
            bad = [c for c in classes if not 0 <= int(c) < logits.shape[-1]]
            if bad:
                raise ValueError(f"classes {bad} outside the model's {logits.shape[-1]} outputs")
            acts = reshape(cut[0]).detach().float()  # (B, K, h, w)
            size = (images.shape[-1], images.shape[-2])  # (W, H), as cv2 takes it
            maps = []
            for i, c in enumerate(classes):
                (grad,) = torch.autograd.grad(
                    logits[:, int(c)].sum(), cut[0], retain_graph=i < len(classes) - 1
                )
                weights = reshape(grad).float().mean(dim=(2, 3))  # (B, K)
                cam = (weights[:, :, None, None] * acts).sum(1).clamp_min(0)  # (B, h, w)
                maps.append(scale_cam_image(scale_cam_image(cam.cpu().numpy(), size)))
    finally:
        handle.remove()
        model.train(was_training)
    if not maps:
        return torch.zeros(images.shape[0], 0, *images.shape[-2:])
    return torch.from_numpy(np.stack(maps, axis=1)).float()
