"""open_clip backbone: build by name + ``pretrained`` tag (hub) or from a local weights file.

The image side returns the global embedding and the patch tokens of chosen blocks, both in the
joint (projected) space, through open_clip's own ``forward_intermediates`` API. The text side
tokenises and encodes label prompts and exposes the text tower for deep prompts. Weights are
frozen by default.

Offline use: pass ``pretrained="/path/to/open_clip_model.safetensors"`` (or ``.bin``/``.pt``): any
existing file path is loaded locally and nothing is downloaded. ``pretrained=None`` builds a
randomly initialised model (seeded by ``init_seed``, so evaluation can rebuild the same frozen
weights from the config alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, image_transform_v2

from ramlico.backbones.registry import bundled_weights, register_model_configs
from ramlico.data.preprocess import ImagePreprocess
from ramlico.utils import get_logger
from ramlico.utils.frozen import FrozenModule

__all__ = ["CLIPBackbone", "ImageFeatures", "project_visual_tokens"]

log = get_logger(__name__)
Tensor = torch.Tensor


@dataclass
class ImageFeatures:
    """Output of :meth:`CLIPBackbone.encode_image`.

    Attributes:
        global_embed: ``(B, D)`` projected image embedding (not normalised).
        patch_tokens: ``{block index: (B, N, D)}`` projected patch tokens (``ln_post`` + ``proj``
            applied to the block's output, the MaskCLIP/RAM convention), N = grid cells.
    """

    global_embed: Tensor
    patch_tokens: dict[int, Tensor]


#: An open_clip ``VisionTransformer`` (or a residual block of one): open_clip has no type
#: information, and its towers' attributes (``conv1``, ``transformer.resblocks``, ``ln_post``,
#: ``proj``, ...) are read as such.
OpenCLIPTower = Any


def project_visual_tokens(visual: OpenCLIPTower, tokens: Tensor) -> Tensor:
    """Map ``(..., width)`` vision-tower tokens to the joint space: ``ln_post(x) @ proj``."""
    x = visual.ln_post(tokens)
    return x @ visual.proj if visual.proj is not None else x


def _offline_hint(model_name: str, pretrained: str) -> str:
    return (
        f"could not load pretrained weights '{pretrained}' for open_clip model '{model_name}'. "
        "Without internet, download the weights elsewhere (e.g. `open_clip.create_model("
        f"'{model_name}', pretrained='{pretrained}')` fills ~/.cache/huggingface) and pass the "
        "local file instead: model.backbone.pretrained=/path/to/open_clip_model.safetensors "
        "(see README, 'Using weights offline')."
    )


class CLIPBackbone(FrozenModule):
    """Frozen (by default) open_clip model with a feature API for the methods.

    Args:
        model_name: open_clip architecture (``open_clip.list_models()``), e.g. ``"ViT-B-16"``,
            ``"ViT-B-16-quickgelu"``, or ramlico's tiny ``"ramlico-tiny-ViT"``.
        pretrained: ``None`` (random init), an open_clip tag (``"openai"``, ``"laion2b_s34b_b88k"``;
            downloaded to ``cache_dir``), a tag of weights shipped with ramlico (``"toy"`` for
            ``"ramlico-toy-ViT"``, :func:`ramlico.backbones.list_bundled_weights`; offline), or a
            local weights file path (offline).
        patch_layers: blocks whose patch tokens :meth:`encode_image` returns (negative = from the
            end; ``-1`` = last block).
        freeze: freeze every weight (``requires_grad=False``, eval mode kept by :meth:`train`).
        init_seed: seed of the random initialisation when ``pretrained`` is ``None``.
        cache_dir: where hub weights are cached.
        force_quick_gelu: use QuickGELU (OpenAI weights were trained with it).
    """

    def __init__(
        self,
        model_name: str,
        pretrained: str | None = None,
        patch_layers: Sequence[int] = (-1,),
        freeze: bool = True,
        init_seed: int | None = 0,
        cache_dir: str | None = None,
        force_quick_gelu: bool = False,
    ) -> None:
        super().__init__()
        register_model_configs()
        available = open_clip.list_models()
        if model_name not in available:
            raise ValueError(
                f"unknown open_clip model '{model_name}'; available: {available}. Add a JSON "
                "config with ramlico.backbones.register_model_configs(path)."
            )
        self.model_name = model_name
        self.pretrained = pretrained
        # open_clip's CLIP / CustomTextCLIP: tower attributes differ by architecture, and
        # nn.Module.__getattr__ would type every one of them as ``Tensor | Module``.
        self.model: Any = self._build(
            model_name, pretrained, init_seed, cache_dir, force_quick_gelu
        )
        self.tokenizer = open_clip.get_tokenizer(model_name)
        n_blocks = len(self.model.visual.transformer.resblocks)
        self.patch_layers = tuple(i % n_blocks for i in patch_layers)
        if freeze:
            self.freeze()

    @staticmethod
    def _build(
        name: str, pretrained: str | None, seed: int | None, cache_dir: str | None,
        quick_gelu: bool,
    ) -> Any:  # fmt: skip
        kwargs = dict(force_quick_gelu=quick_gelu, cache_dir=cache_dir)
        if pretrained is None:
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(seed)
                return open_clip.create_model(name, pretrained=None, **kwargs)
        bundled = bundled_weights(name, pretrained)
        if bundled is not None:
            pretrained = str(bundled)
        if Path(pretrained).suffix or "/" in pretrained or "\\" in pretrained:
            if not Path(pretrained).is_file():
                raise FileNotFoundError(
                    f"pretrained weights file not found: {pretrained}. Pass an existing open_clip "
                    "checkpoint (.safetensors/.bin/.pt) or an open_clip tag "
                    f"(open_clip.list_pretrained_tags_by_model('{name}'))."
                )
        try:
            return open_clip.create_model(name, pretrained=pretrained, **kwargs)
        except (RuntimeError, OSError, ValueError) as exc:
            raise RuntimeError(_offline_hint(name, pretrained)) from exc

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1])

    @property
    def image_size(self) -> int:
        size = self.model.visual.preprocess_cfg["size"]
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def image_mean(self) -> tuple[float, ...]:
        return tuple(self.model.visual.preprocess_cfg["mean"])

    @property
    def image_std(self) -> tuple[float, ...]:
        return tuple(self.model.visual.preprocess_cfg["std"])

    def preprocess(self) -> ImagePreprocess:
        """The model's own evaluation transform (open_clip's ``image_transform_v2``).

        For the OpenAI models: resize the shorter side to ``image_size`` (bicubic, PIL), centre
        crop, convert to RGB, ``ToTensor``, ``Normalize(image_mean, image_std)``.
        """
        cfg = PreprocessCfg(**self.model.visual.preprocess_cfg)
        return ImagePreprocess.from_transform(
            image_transform_v2(cfg, is_train=False), self.image_size
        )

    def check_input(self, images: Tensor) -> None:
        """Raise a clear error when ``(B, 3, H, W)`` images do not have the model's input size."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"{self.model_name} takes (B, 3, {self.image_size}, {self.image_size}) images, got "
                f"{tuple(images.shape)}; set data.image_size={self.image_size} (zero-shot "
                "classification takes the backbone's own preprocessing automatically)"
            )

    @property
    def logit_scale(self) -> Tensor:
        """CLIP's learned temperature ``exp(logit_scale)`` (100 for the OpenAI weights)."""
        return self.model.logit_scale.exp()

    def encode_image(self, images: Tensor) -> ImageFeatures:
        """Global embedding and projected patch tokens.

        Args:
            images: ``(B, 3, H, W)`` normalised images.
        Returns:
            :class:`ImageFeatures` with ``global_embed (B, D)`` and ``patch_tokens[i] (B, N, D)``.
        """
        self.check_input(images)
        visual = self.model.visual
        out = visual.forward_intermediates(
            images, indices=list(self.patch_layers), output_fmt="NLC", output_extra_tokens=False
        )
        patches = {}
        for idx, tokens in zip(self.patch_layers, out["image_intermediates"], strict=True):
            patches[idx] = self.project_tokens(tokens)
        return ImageFeatures(out["image_features"], patches)

    def embed_image(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, D)`` projected global embedding (not normalised)."""
        self.check_input(images)
        return self.model.encode_image(images, normalize=False)

    def project_tokens(self, tokens: Tensor) -> Tensor:
        """Map ``(B, N, width)`` block outputs to the joint space: ``ln_post(x) @ proj``."""
        return project_visual_tokens(self.model.visual, tokens)

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """``(len(texts), context_length)`` token ids with this model's tokenizer."""
        return self.tokenizer(list(texts))

    def encode_text(self, tokens: Tensor, normalize: bool = False) -> Tensor:
        """``(C, L)`` token ids -> ``(C, D)`` text embeddings (the EOT token, projected)."""
        emb = self.model.encode_text(tokens.to(self.model.token_embedding.weight.device))
        return F.normalize(emb, dim=-1) if normalize else emb

    @torch.no_grad()
    def zero_shot_classifier(
        self, classnames: Sequence[str], templates: Sequence[str] = ("a photo of a {}.",)
    ) -> Tensor:
        """``(D, C)`` unit text embeddings averaged over prompt templates (open_clip's helper)."""
        device = self.model.token_embedding.weight.device
        fns = [t.format for t in templates]
        return open_clip.build_zero_shot_classifier(
            self.model, self.tokenizer, list(classnames), fns, device=device, use_tqdm=False
        )
