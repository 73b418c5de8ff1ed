"""Deep label prompts in the frozen CLIP text tower (RAM; docs/ram.md, "Streams").

In each prompted block ``l`` a sequence ``w`` ``(C, L, D)`` becomes ``[w_0 ; P_l ; w_1 ; ...]``:
the ``n`` prompt vectors ``P_l`` ``(n, D)`` (shared by all labels) go right after the start
token, the block runs with the causal mask, and the prompt outputs are dropped again, so the
sequence keeps its original layout and the end-of-text (EOT) position is unchanged::

    reference (full length 77): keep the first 77 of the 77 + n tokens, set the last n aside,
                                run the block, drop positions 1..n, re-append the set-aside tokens
    truncated (default, exact): cut every sequence to L' = max EOT + 1 once, run prompted blocks on
                                L' + n tokens and drop positions 1..n

Under the causal mask the outputs at positions <= EOT are the same in both, and only the EOT output
is used (``ln_final`` then ``text_projection``), so truncation is exact while it cuts the text
compute several-fold (``L'`` is about 10 for label prompts). Blocks before the first prompted one do
not depend on the prompts: their output is cached per token tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from ramlico.modules.layers import LayerSpec, resolve_layers
from ramlico.modules.text_cache import TextFeatureCache
from ramlico.modules.text_tower import FrozenCLIPTextTower

__all__ = ["DeepPromptTextEncoder"]

Tensor = torch.Tensor


class DeepPromptTextEncoder(nn.Module):
    """Learnable deep prompts for a frozen open_clip text tower.

    Args:
        width: text tower width ``D`` (512 for ViT-B/16).
        n_blocks: text blocks (12).
        prompt_layers: prompted blocks, a :data:`~ramlico.modules.layers.LayerSpec` (RAM:
            ``"last:3"`` = 9-11 for COCO, ``"last:6"`` for NUS-WIDE).
        prompt_len: prompts per block (4); 0 = the plain frozen tower.
        prompt_std: std of the normal initialisation (0.02).
        truncate: use the exact truncated-sequence path (see module docstring).
    """

    def __init__(
        self,
        width: int,
        n_blocks: int,
        prompt_layers: LayerSpec = "last:3",
        prompt_len: int = 4,
        prompt_std: float = 0.02,
        truncate: bool = True,
    ) -> None:
        super().__init__()
        layers = resolve_layers(prompt_layers, n_blocks, "model.text_prompt_layers")
        layers = layers if prompt_len > 0 else ()
        self.n_blocks = n_blocks
        self.prompt_len = prompt_len if layers else 0
        self.truncate = truncate
        self.prompts = nn.ParameterDict(
            {str(i): nn.Parameter(torch.randn(prompt_len, width) * prompt_std) for i in layers}
        )
        self.first_prompted = min(layers) if layers else n_blocks
        self.prefix_cache = TextFeatureCache(max_entries=8)

    def _prefix(self, tower: FrozenCLIPTextTower, ids: Tensor, length: int) -> Tensor:
        """Frozen blocks before the first prompted block (no gradient), cached per token set.

        The key holds everything the output depends on besides the frozen weights' values: the
        device, the weights' dtype, the autocast dtype (``None`` outside autocast; a bf16 prefix
        must not serve an fp16 call), the length and the token ids. ``ids`` are the CPU token
        ids, so the key costs no device synchronisation.
        """
        weight = tower.token_embedding.weight
        device = weight.device
        autocast = (
            torch.get_autocast_dtype(device.type)
            if torch.is_autocast_enabled(device.type)
            else None
        )
        key = (
            "prefix",
            str(device),
            weight.dtype,
            autocast,
            length,
            tuple(ids.shape),
            hash(ids.numpy().tobytes()),
        )

        def compute() -> Tensor:
            with torch.no_grad():
                cast = tower.transformer.get_cast_dtype()
                x = tower.token_embedding(ids[:, :length].to(device)).to(cast)
                x = x + tower.positional_embedding[:length].to(cast)
                mask = tower.causal_mask(length)
                for i in range(self.first_prompted):
                    x = tower.transformer.resblocks[i](x, attn_mask=mask)
            return x

        return self.prefix_cache.get(key, compute)

    def forward(self, tower: FrozenCLIPTextTower, tokens: Tensor) -> Tensor:
        """Label features with prompts.

        Args:
            tower: the frozen text tower (:class:`FrozenCLIPTextTower`; not owned by this module).
            tokens: ``(C, 77)`` token ids of the label prompts (keep them on the CPU: the EOT
                positions, the truncation length and the cache key are read there, sync-free).

        Returns:
            ``(C, D_embed)`` un-normalised text features (EOT token, ``ln_final``, projection).
        """
        ids = tokens.cpu()
        eot = ids.argmax(dim=-1)
        full = ids.shape[1]
        n = self.prompt_len
        if not self.truncate and n and int(eot.max()) >= full - n:
            raise ValueError(
                f"a label prompt is too long: its EOT at position {int(eot.max())} would be set "
                f"aside by {n} deep prompts (needs <= {full - n - 1}); shorten the label name"
            )
        length = int(eot.max()) + 1 if self.truncate else full
        x = self._prefix(tower, ids, length)
        blocks = tower.transformer.resblocks
        for i in range(self.first_prompted, self.n_blocks):
            key = str(i)
            if key in self.prompts:
                p = self.prompts[key].to(x.dtype).expand(x.shape[0], -1, -1)
                seq = torch.cat([x[:, :1], p, x[:, 1:]], dim=1)
                aside = None
                if not self.truncate:
                    seq, aside = seq[:, :full], seq[:, full:]
                out = blocks[i](seq, attn_mask=tower.causal_mask(seq.shape[1]))
                x = torch.cat([out[:, :1], out[:, 1 + n :]], dim=1)
                if aside is not None:
                    x = torch.cat([x, aside], dim=1)
            else:
                x = blocks[i](x, attn_mask=tower.causal_mask(x.shape[1]))
        x = tower.ln_final(x)
        return tower.project(x[torch.arange(x.shape[0], device=x.device), eot.to(x.device)])
