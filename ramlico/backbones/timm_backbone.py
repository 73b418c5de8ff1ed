"""timm image encoders (ResNet, WideResNet, ViT, DINOv2) with access to the last feature map.

``pretrained`` is ``False`` (random init), ``True`` (timm's hub weights), a local weights file
(offline; loaded through timm's ``pretrained_cfg_overlay=dict(file=...)``) or the tag of weights
shipped inside ramlico (``"toy"`` for ``regnetx_002``: the toy world's vision-only model,
:func:`ramlico.backbones.list_bundled_weights`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file
from torchvision import transforms as tv

from ramlico.backbones.registry import bundled_weights, list_bundled_weights
from ramlico.data.preprocess import ConvertRGB, ImagePreprocess
from ramlico.utils.frozen import FrozenModule

__all__ = ["TimmBackbone"]

Tensor = torch.Tensor


class TimmBackbone(FrozenModule):
    """A timm model used as an image encoder.

    Args:
        model_name: any ``timm.list_models()`` name, e.g. ``"resnet50"``, ``"wide_resnet50_2"``,
            ``"vit_base_patch16_224"``, ``"vit_base_patch14_dinov2"``.
        pretrained: ``False``, ``True`` (hub), a local weights file path, or a bundled tag
            (``"toy"``, offline, from the package).
        freeze: freeze every weight and keep eval mode.
        **model_kwargs: forwarded to ``timm.create_model`` (``img_size``, ``depth``, ...);
            ``None`` values are dropped (the architecture's default).
    """

    def __init__(
        self,
        model_name: str,
        pretrained: bool | str = False,
        freeze: bool = False,
        **model_kwargs: Any,
    ) -> None:
        super().__init__()
        if not timm.is_model(model_name):
            close = timm.list_models(f"*{model_name.split('_')[0]}*")[:20]
            raise ValueError(f"unknown timm model '{model_name}'; similar names: {close}")
        # None = "the architecture's default" (lets a config unset a key such as img_size)
        kwargs: dict[str, Any] = dict(
            num_classes=0, **{k: v for k, v in model_kwargs.items() if v is not None}
        )
        bundled = bundled_weights(model_name, pretrained) if isinstance(pretrained, str) else None
        if isinstance(pretrained, str) and bundled is None:
            if not Path(pretrained).is_file():
                tags = [t for m, t in list_bundled_weights() if m == model_name]
                hint = f" (bundled tags of this model: {tags})" if tags else ""
                raise FileNotFoundError(f"timm weights file not found: {pretrained}{hint}")
            kwargs["pretrained_cfg_overlay"] = dict(file=str(pretrained))
        try:
            # a timm model: forward_features / forward_head / num_features are not nn.Module's
            self.model: Any = timm.create_model(
                model_name, pretrained=bool(pretrained) and bundled is None, **kwargs
            )
        except (RuntimeError, OSError) as exc:
            raise RuntimeError(
                f"could not load pretrained weights for timm model '{model_name}'. Offline, pass "
                "a local file: pretrained=/path/to/model.safetensors (see README)."
            ) from exc
        if bundled is not None:  # weights shipped inside ramlico (the toy world's models)
            state = load_file(str(bundled))
            self.model.load_state_dict(
                {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
            )
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        if freeze:
            self.freeze()

    def preprocess(self) -> ImagePreprocess:
        """The model's own evaluation transform (``timm.data.create_transform``).

        Built from the model's data config (``resolve_model_data_config``) at the model's actual
        input size, behind an RGB conversion (timm's transform expects RGB images).
        """
        cfg = timm.data.resolve_model_data_config(self.model)
        size = getattr(getattr(self.model, "patch_embed", None), "img_size", None)
        if size is not None:
            cfg["input_size"] = (3, *tuple(size))
        transform = timm.data.create_transform(**cfg, is_training=False)
        steps = [ConvertRGB(), *transform.transforms]
        return ImagePreprocess.from_transform(tv.Compose(steps), cfg["input_size"][-1])

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)

    def feature_map(self, images: Tensor) -> Tensor:
        """Last feature map as ``(B, C, L)``: C channels over L spatial positions.

        CNNs: ``(B, C, H, W)`` flattened; ViTs: patch tokens ``(B, L, D)`` (prefix tokens
        dropped) transposed to ``(B, D, L)``.
        """
        feats = self.model.forward_features(images)
        if feats.dim() == 4:
            return feats.flatten(2)
        return feats[:, self.num_prefix_tokens :].transpose(1, 2)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, num_features)`` pooled features (timm's ``forward_head(pre_logits=True)``)."""
        return self.model.forward_head(self.model.forward_features(images), pre_logits=True)
