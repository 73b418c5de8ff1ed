"""open_clip and timm backbones: build by name, hub tag or local weights file."""

from ramlico.backbones.clip import CLIPBackbone, ImageFeatures
from ramlico.backbones.registry import (
    bundled_weights,
    list_bundled_weights,
    list_clip_models,
    register_model_configs,
)
from ramlico.backbones.timm_backbone import TimmBackbone

__all__ = [
    "CLIPBackbone",
    "ImageFeatures",
    "TimmBackbone",
    "bundled_weights",
    "list_bundled_weights",
    "list_clip_models",
    "register_model_configs",
]
