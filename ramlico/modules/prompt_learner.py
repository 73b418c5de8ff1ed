"""LICO's learnable prompts through a frozen CLIP text tower (docs/lico.md, "Prompts").

For class ``k`` the token sequence is ``[SOS] X_1 .. X_n <class name> . [EOT] [pad]``: the ``n``
"X" slots are learnable context vectors, everything else is the frozen token embedding of the
string ``"X X .. X {name}."``. There are ``M`` prompt *variants* (each with its own ``n`` context
vectors, one parameter tensor ``(M, n, W)``), and the feature of prompt ``(r, k)`` is the
final-LayerNorm hidden state at the EOT position times the text projection. The text tower is
frozen (no gradients to its weights, eval mode) but gradients flow through it into the context.

Only the text tower is kept: the CLIP image tower is dropped after construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.modules.text_tower import FrozenCLIPTextTower

__all__ = ["FrozenCLIPTextTower", "LICOPromptLearner"]

Tensor = torch.Tensor
VARIANT_INITS = ("roll_r", "identical")
FEATURE_MODES = ("variant_eot", "all_tokens")
PROMPT_MODES = ("learnable", "random_frozen")


class LICOPromptLearner(nn.Module):
    """``M`` learnable prompt variants per class, encoded by the frozen CLIP text tower.

    Args:
        clip: the CLIP model whose text tower is used (frozen; its image tower is not kept).
        class_names: class names in label order (``_`` is replaced by a space).
        n_ctx: context tokens per prompt (LICO: 12).
        n_variants: prompt variants ``M`` (``None`` = ``n_ctx``, as in the reference).
        ctx_std: std of the random context initialisation (0.02).
        variant_init: ``"roll_r"`` (variant ``r`` = base context rolled by ``r`` positions) or
            ``"identical"`` (every variant rolled by 1: the reference code).
        init_phrase: optional phrase whose token embeddings fill the *last* context slots of
            every variant (the fine-grained "prompt prior", e.g. ``"a type of aircraft"``).
        feature_mode: ``"variant_eot"`` (one EOT feature per variant, ``M`` rows) or
            ``"all_tokens"`` (ablation: variant 0's ``n_ctx`` context outputs + EOT,
            ``n_ctx + 1`` rows).
        prompt_mode: ``"learnable"`` or ``"random_frozen"`` (context fixed at its random init;
            LICO Table 13).
        truncate: cut sequences after the longest EOT (same result, much cheaper).
        seed: seed of the context initialisation (``None``: the global generator).
    """

    token_ids: Tensor
    eot_index: Tensor

    def __init__(
        self,
        clip: CLIPBackbone,
        class_names: Sequence[str],
        n_ctx: int = 12,
        n_variants: int | None = None,
        ctx_std: float = 0.02,
        variant_init: str = "roll_r",
        init_phrase: str | None = None,
        feature_mode: str = "variant_eot",
        prompt_mode: str = "learnable",
        truncate: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("variant_init", variant_init, VARIANT_INITS),
            ("feature_mode", feature_mode, FEATURE_MODES),
            ("prompt_mode", prompt_mode, PROMPT_MODES),
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")
        if n_ctx < 1 or (n_variants is not None and n_variants < 1):
            raise ValueError(f"n_ctx and n_variants must be >= 1, got {n_ctx}, {n_variants}")
        if not class_names:
            raise ValueError("class_names is empty; pass the dataset's names in label order")
        self.text = FrozenCLIPTextTower(clip)
        self.class_names = [n.replace("_", " ") for n in class_names]
        self.n_ctx = n_ctx
        self.n_variants = n_ctx if n_variants is None else n_variants
        self.feature_mode = feature_mode
        ids = clip.tokenize([" ".join(["X"] * n_ctx) + f" {n}." for n in self.class_names])
        x_id = clip.tokenize(["X"])[0, 1]
        if not bool((ids[:, 1 : 1 + n_ctx] == x_id).all()):
            raise ValueError("the tokenizer did not give one token per context 'X'; use a CLIP BPE")
        eot = ids.argmax(-1)
        if int(eot.max()) + 1 >= ids.shape[1] and ids[:, -1].ne(0).any():
            raise ValueError(
                f"a prompt is longer than the text context ({ids.shape[1]} tokens) with "
                f"n_ctx={n_ctx}; shorten the class names or n_ctx"
            )
        length = int(eot.max()) + 1 if truncate else ids.shape[1]
        self.register_buffer("token_ids", ids[:, :length].clone(), persistent=False)
        self.register_buffer("eot_index", eot.clone(), persistent=False)
        ctx = self._init_context(clip, ctx_std, variant_init, init_phrase, seed)
        self.ctx = nn.Parameter(ctx, requires_grad=prompt_mode == "learnable")

    def _init_context(
        self, clip: CLIPBackbone, std: float, variant_init: str, phrase: str | None,
        seed: int | None,
    ) -> Tensor:  # fmt: skip
        """``(M, n_ctx, W)``: rolled copies of one ``N(0, std^2)`` base (+ phrase in the tail)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        width = self.text.width
        n_phrase, phrase_emb = 0, None
        if phrase:
            pid = clip.tokenize([phrase])[0]
            end = int(pid.argmax())
            with torch.no_grad():
                phrase_emb = self.text.token_embedding(pid[1:end]).float()
            n_phrase = phrase_emb.shape[0]
            if n_phrase >= self.n_ctx:
                raise ValueError(
                    f"init_phrase {phrase!r} has {n_phrase} tokens; it must be shorter than "
                    f"n_ctx={self.n_ctx}"
                )
        base = torch.randn(self.n_ctx - n_phrase, width, generator=gen) * std
        variants = []
        for r in range(self.n_variants):
            shift = r if variant_init == "roll_r" else 1
            v = torch.roll(base, shifts=shift, dims=0)
            variants.append(v if phrase_emb is None else torch.cat([v, phrase_emb], 0))
        return torch.stack(variants)

    @property
    def num_rows(self) -> int:
        """``M``: prompt features per class (rows of ``G_i``)."""
        return self.n_variants if self.feature_mode == "variant_eot" else self.n_ctx + 1

    @property
    def embed_dim(self) -> int:
        return self.text.embed_dim

    def forward(self, class_idx: Tensor, perm: Tensor | None = None) -> Tensor:
        """Text features of the prompts of the given classes.

        Args:
            class_idx: ``(K_b,)`` int64 class indices (usually the unique labels of a batch).
            perm: optional ``(n_ctx,)`` permutation of the context positions (dynamic context),
                applied identically to every variant and class.
        Returns:
            ``(M, K_b, D)`` fp32 features; row ``[r, j]`` is variant ``r`` of class
            ``class_idx[j]`` (``M = num_rows``).
        """
        ids = self.token_ids[class_idx]  # (K_b, L)
        k_b, length = ids.shape
        with torch.no_grad():
            emb = self.text.token_embedding(ids).float()  # (K_b, L, W)
        ctx = self.ctx if perm is None else self.ctx[:, perm]
        if self.feature_mode == "all_tokens":
            ctx = ctx[:1]
        m, n, width = ctx.shape
        prefix = emb[:, :1].unsqueeze(0).expand(m, k_b, 1, width)
        suffix = emb[:, 1 + n :].unsqueeze(0).expand(m, k_b, length - 1 - n, width)
        ctx_e = ctx.unsqueeze(1).expand(m, k_b, n, width)
        x = torch.cat([prefix, ctx_e.to(emb.dtype), suffix], dim=2).reshape(m * k_b, length, width)
        hidden = self.text.encode_embeddings(x)  # (m K_b, L, W), rows ordered r * K_b + j
        eot = self.eot_index[class_idx].repeat(m)
        rows = torch.arange(m * k_b, device=x.device)
        if self.feature_mode == "variant_eot":
            return self.text.project(hidden[rows, eot]).reshape(m, k_b, -1)
        positions = torch.cat([hidden[:, 1 : 1 + n], hidden[rows, eot].unsqueeze(1)], dim=1)
        return self.text.project(positions).transpose(0, 1)  # (n + 1, K_b, D)
