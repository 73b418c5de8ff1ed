"""RAM's ladder local adapter beside a frozen open_clip ViT (docs/ram.md, "Streams").

Two streams run through the blocks of the frozen vision tower::

    main stream  x^(l+1) = Block_l([x^(l) ; E_l])[:, :1+N]    (prompts E_l appended in some blocks)
    side stream  r^(l+1) = r^(l) + SAA_l(h^(l)) + [l in TSS] TSS_l(x^(l+1), t),    r^(0) = x^(0)

with ``h^(l) = LN1_l([x^(l) ; E_l])`` the block's own attention input. Nothing of ``r`` enters
``x``.
After the last block, ``g = ln_post(x_cls) W_proj`` ``(B, D)`` and ``z = ln_post(r_patches) W_proj``
``(B, N, D)``.

Gradient and memory: blocks before the first adapted block (the first with TSS or visual prompts)
run under ``torch.no_grad`` (nothing trainable reaches them), so autograd keeps activations only
for the adapted blocks. The teacher of KCOT (frozen CLIP with SAA, no TSS, no prompts) shares that
prefix with the student and only re-runs the adapted blocks without prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ramlico.backbones.clip import OpenCLIPTower, project_visual_tokens
from ramlico.modules.layers import LayerSpec, resolve_layers
from ramlico.modules.saa import self_aware_attention
from ramlico.modules.tss import TextGuidedSpatialSelection

__all__ = ["LadderLocalAdapter", "LadderOutput", "saa_streams", "saa_tower"]

Tensor = torch.Tensor


@dataclass
class LadderOutput:
    """``global_embed (B, D)``, ``regions (B, N, D)`` (not normalised), ``teacher_regions``."""

    global_embed: Tensor
    regions: Tensor
    teacher_regions: Tensor | None = None


def _check_visual(visual: OpenCLIPTower) -> None:
    needed = (
        "conv1",
        "class_embedding",
        "positional_embedding",
        "ln_pre",
        "transformer",
        "ln_post",
    )
    missing = [n for n in needed if not hasattr(visual, n)]
    if missing or getattr(visual, "attn_pool", None) is not None:
        raise TypeError(
            "the RAM ladder adapter needs an open_clip VisionTransformer with class-token pooling "
            f"(e.g. 'ViT-B-16-quickgelu'); this tower lacks {missing or ['token pooling']}"
        )


class LadderLocalAdapter(nn.Module):
    """Trainable side network of RAM: TSS adapters and visual prompt tokens.

    Args:
        width: vision token width ``W`` (768 for ViT-B/16).
        text_dim: label feature width ``D`` (512).
        n_blocks: blocks of the vision tower (12).
        saa_layers: blocks whose SAA read-out enters the side stream (all 12 in RAM).
        tss_layers: blocks with a TSS adapter (the last 3).
        visual_prompt_layers: blocks that append visual prompts (the last 3).
            Each block choice is a :data:`~ramlico.modules.layers.LayerSpec`: ``"all"``,
            ``"last:3"`` (fits any depth) or indices (negative = from the end).
        visual_prompt_len: prompts per block (8).
        combine: ``"sum"`` (reference: ``r + SAA + TSS``) or ``"mean"`` (paper Eq. 5:
            ``r + (SAA + TSS) / 2`` in TSS blocks).
        kernel_size: TSS mask-conv kernel.
        prompt_std: std of the normal initialisation of the visual prompts (0.02).
    """

    def __init__(
        self,
        width: int,
        text_dim: int,
        n_blocks: int,
        saa_layers: LayerSpec = "all",
        tss_layers: LayerSpec = "last:3",
        visual_prompt_layers: LayerSpec = "last:3",
        visual_prompt_len: int = 8,
        combine: str = "sum",
        kernel_size: int = 3,
        prompt_std: float = 0.02,
    ) -> None:
        super().__init__()
        if combine not in ("sum", "mean"):
            raise ValueError(f"lla_combine must be 'sum' or 'mean', got {combine!r}")
        self.n_blocks = n_blocks
        self.saa_layers = resolve_layers(saa_layers, n_blocks, "model.saa_layers")
        self.tss_layers = resolve_layers(tss_layers, n_blocks, "model.tss_layers")
        self.prompt_layers = (
            resolve_layers(visual_prompt_layers, n_blocks, "model.visual_prompt_layers")
            if visual_prompt_len > 0
            else ()
        )
        self.combine = combine
        self.tss = nn.ModuleDict(
            {
                str(i): TextGuidedSpatialSelection(width, text_dim, kernel_size)
                for i in self.tss_layers
            }
        )
        self.visual_prompts = nn.ParameterDict(
            {
                str(i): nn.Parameter(torch.randn(visual_prompt_len, width) * prompt_std)
                for i in self.prompt_layers
            }
        )
        adapted = set(self.tss_layers) | set(self.prompt_layers)
        #: first block whose computation depends on trainable parameters.
        self.first_adapted = min(adapted) if adapted else n_blocks

    # ------------------------------------------------------------------ frozen-tower pieces
    @staticmethod
    def embed(visual: OpenCLIPTower, images: Tensor) -> Tensor:
        """Patch embedding, class token, positions, ln_pre: ``(B, 3, H, W)`` -> ``(B, 1+N, W)``."""
        _check_visual(visual)
        size = getattr(visual, "image_size", None)
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if size[0] is not None and tuple(images.shape[-2:]) != size:
            raise ValueError(
                f"images are {tuple(images.shape[-2:])} px but the CLIP tower expects {size} "
                f"(positional embeddings); set data.image_size={size[0]}"
            )
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        return visual.ln_pre(x)

    @staticmethod
    def block(blk: OpenCLIPTower, x: Tensor) -> tuple[Tensor, Tensor]:
        """One open_clip residual block; returns ``(output, LN1 output h)``."""
        h = blk.ln_1(x)
        x = x + blk.ls_1(blk.attention(q_x=h))
        x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
        return x, h

    @staticmethod
    def project(visual: OpenCLIPTower, tokens: Tensor) -> Tensor:
        """``ln_post`` then ``proj``: ``(..., W)`` -> ``(..., D)``."""
        return project_visual_tokens(visual, tokens)

    # ------------------------------------------------------------------ forward
    def _run(
        self,
        visual: OpenCLIPTower,
        x: Tensor,
        r: Tensor,
        start: int,
        text: Tensor | None,
        adapt: bool,
    ) -> tuple[Tensor, Tensor]:
        blocks = visual.transformer.resblocks
        n_real = x.shape[1]
        for i in range(start, self.n_blocks):
            key = str(i)
            inp = x
            if adapt and key in self.visual_prompts:
                e = self.visual_prompts[key].to(x.dtype).expand(x.shape[0], -1, -1)
                inp = torch.cat([x, e], dim=1)
            out, h = self.block(blocks[i], inp)
            x = out[:, :n_real]
            read = self_aware_attention(h, blocks[i].attn, n_real) if i in self.saa_layers else None
            if adapt and key in self.tss:
                if text is None:
                    raise ValueError("the TSS adapters need label features (text=...)")
                tss = self.tss[key](x, text)
                read = (
                    tss
                    if read is None
                    else (read + tss if self.combine == "sum" else 0.5 * (read + tss))
                )
            if read is not None:
                r = r + read
        return x, r

    def forward(
        self,
        visual: OpenCLIPTower,
        images: Tensor,
        text: Tensor | None,
        *,
        adapt: bool = True,
        with_teacher: bool = False,
    ) -> LadderOutput:
        """Run the frozen tower with the side network.

        Args:
            visual: the frozen open_clip ``VisionTransformer`` (not owned by this module).
            images: ``(B, 3, H, W)`` normalised images.
            text: ``(C, D)`` label features for TSS (with gradient), or ``None`` if not adapting.
            adapt: ``False`` = the frozen teacher (SAA only; no TSS, no prompts).
            with_teacher: also return the teacher's regions (no gradient), sharing the frozen
                prefix with the student.

        Returns:
            :class:`LadderOutput` (``teacher_regions`` set when ``with_teacher``).
        """
        if len(visual.transformer.resblocks) != self.n_blocks:
            raise ValueError(
                f"ladder built for {self.n_blocks} blocks, tower has "
                f"{len(visual.transformer.resblocks)}"
            )
        start = self.first_adapted if adapt else self.n_blocks
        with torch.no_grad():
            x0 = self.embed(visual, images)
            x, r = self._run_prefix(visual, x0, start)
        teacher = None
        if with_teacher:
            with torch.no_grad():
                _, r_t = self._run(visual, x, r, start, None, adapt=False)
                teacher = self.project(visual, r_t[:, 1:])
        if adapt:
            x, r = self._run(visual, x, r, start, text, adapt=True)
        g = self.project(visual, x[:, 0])
        z = self.project(visual, r[:, 1:])
        return LadderOutput(g, z, teacher)

    def _run_prefix(self, visual: OpenCLIPTower, x0: Tensor, stop: int) -> tuple[Tensor, Tensor]:
        """Frozen blocks ``0 .. stop-1`` (no adapters there): ``(x^(stop), r^(stop))``."""
        return saa_streams(visual, x0, stop, self.saa_layers)


def saa_tower(visual: OpenCLIPTower, images: Tensor) -> tuple[Tensor, Tensor]:
    """The whole plain tower on ``images`` ``(B, 3, H, W)``, SAA in every block.

    Returns ``(x, r)``, both ``(B, 1+N, W)`` before ``ln_post``/``proj``: the main stream (class
    token = CLIP's image feature) and the value-value read-out of every block (:func:`saa_streams`;
    the regions of RAM's frozen teacher, the toy CLIP's region term and zero-shot heatmaps).
    """
    n = len(visual.transformer.resblocks)
    return saa_streams(visual, LadderLocalAdapter.embed(visual, images), n, range(n))


def saa_streams(
    visual: OpenCLIPTower, x0: Tensor, stop: int, saa_layers: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Blocks ``0 .. stop-1`` of the plain tower: main stream ``x`` and SAA side stream ``r``.

    ``x^(l+1) = Block_l(x^(l))``, ``r^(l+1) = r^(l) + [l in saa_layers] SAA_l(LN1_l(x^(l)))``,
    ``r^(0) = x^(0) = x0`` ``(B, 1+N, W)`` (:meth:`LadderLocalAdapter.embed`). Differentiable
    (the ladder calls it under ``no_grad``; the toy CLIP's training reads ``r``).
    """
    blocks = visual.transformer.resblocks
    x, r = x0, x0
    for i in range(stop):
        x, h = LadderLocalAdapter.block(blocks[i], x)
        if i in saa_layers:
            r = r + self_aware_attention(h, blocks[i].attn)
    return x, r
