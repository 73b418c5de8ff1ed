"""The frozen text side of an open_clip model, shared by the prompt learners (LICO, RAM).

Both learn prompts around a frozen CLIP text tower and read the end-of-text (EOT) token; both
truncate the sequences after the longest EOT (exact under the causal mask). This module holds the
tower's pieces (shared with the backbone, not copied) and the two operations they need.
"""

from __future__ import annotations

import torch
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.utils.frozen import FrozenModule

__all__ = ["FrozenCLIPTextTower"]

Tensor = torch.Tensor


class FrozenCLIPTextTower(FrozenModule):
    """The text side of an open_clip model, frozen: embeddings, transformer, final LN, projection.

    Args:
        clip: a :class:`CLIPBackbone`; only its text modules are kept (shared, not copied).
    Raises:
        ValueError: the model does not pool text at the EOT (argmax) token.
    """

    attn_mask: Tensor | None

    def __init__(self, clip: CLIPBackbone) -> None:
        super().__init__()
        model = clip.model
        pool = getattr(model, "text_pool_type", "argmax")
        if pool != "argmax":
            raise ValueError(
                f"prompt learning needs EOT (argmax) text pooling; '{clip.model_name}' uses "
                f"'{pool}'. Use an OpenAI-style CLIP text tower such as ViT-B-32 or ViT-B-16."
            )
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.freeze()  # no gradients, eval mode, left out of checkpoints

    @property
    def width(self) -> int:
        return int(self.token_embedding.weight.shape[-1])

    @property
    def embed_dim(self) -> int:
        proj = self.text_projection
        return int(proj.out_features if isinstance(proj, nn.Linear) else proj.shape[-1])

    def causal_mask(self, length: int) -> Tensor | None:
        """The ``(length, length)`` causal mask (``length <= 77``), or ``None`` if unmasked."""
        return self.attn_mask[:length, :length] if self.attn_mask is not None else None

    def encode_embeddings(self, x: Tensor) -> Tensor:
        """Run prompt embeddings through the tower.

        Args:
            x: ``(S, L, W)`` token embeddings (learnable context included), ``L <= 77``.
        Returns:
            ``(S, L, W)`` final-LayerNorm hidden states. With a causal mask, position ``p``
            only sees positions ``<= p``, so truncating ``L`` after the EOT changes nothing.
        """
        length = x.shape[1]
        x = x + self.positional_embedding[:length].to(x.dtype)
        x = self.transformer(x, attn_mask=self.causal_mask(length))
        return self.ln_final(x)

    def project(self, h: Tensor) -> Tensor:
        """``(..., W)`` hidden states -> ``(..., D)`` joint-space text features."""
        proj = self.text_projection
        return proj(h) if isinstance(proj, nn.Linear) else h @ proj
