"""Train the toy CLIP from scratch on captioned toy-world scenes (CPU, minutes).

    python -m ramlico.toy.train_clip --out logs/toy_clip            # the shipped recipe, seed 0
    python -m ramlico.toy.train_clip --out /tmp/t --steps 20        # a smoke run
    python -m ramlico.toy.train_clip --out logs/toy_clip --resume   # continue a killed run

An open_clip ``ramlico-toy-ViT`` (64 px, 8 px patches, vision width 96 x 4 blocks, text width
64 x 3 blocks, 64-d joint space) is trained with the symmetric contrastive loss, every caption
that is true of an image counting as its positive (:mod:`ramlico.losses.contrastive`), on an
endless seeded stream of scenes (:mod:`ramlico.toy.data`). The loss has two terms with the same
captions and temperature: CLIP's, on the class-token embedding, and ``local_weight`` times a
FILIP-style one (Yao et al., 2022) on the best-matching region, ``max_n cos(z_n, t)``. The regions
``z_n`` are the parameter-free value-value (SAA) read-out that RAM's ladder and SCLIP-style
methods take from a frozen CLIP (``--local-readout saa``; ``patch`` = the raw last-block patch
tokens). Large CLIPs have this property on their own: their raw patch tokens match text poorly,
a value-value read-out of the same tower recovers local meaning. A 4-block CLIP trained for
minutes does not acquire it from the global term alone, so the toy CLIP is taught it; its raw
patch tokens stay untrained, as in real CLIPs. AdamW,
linear warm-up then cosine decay, learnable temperature (CLIP's init 0.07, logit scale capped at
100).

While training, the token table holds only the ~100 tokens the toy world's captions use (the
other rows of the 49,408-token BPE table get no gradient); the exported model has the full
table, with zero rows for unused tokens, so open_clip's tokenizer and loaders work unchanged.

Deterministic for a seed: sample ``i`` is a function of ``(seed, i)``, initialisation is seeded,
and the number of threads is fixed (``--threads``); same torch build and CPU -> same bits. The run
writes ``clip_toy.safetensors`` (fp16), ``clip_toy.json`` (the model card's data: recipe, sha256,
zero-shot accuracy, time), ``MODEL_CARD.md``, ``train_log.jsonl`` and ``train_state.pt`` (resume)
to ``--out``; ``--install`` also copies the weights and the card into the package.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.backbones.clip import project_visual_tokens
from ramlico.backbones.registry import BUNDLED_WEIGHTS_DIR, TOY_CLIP, register_model_configs
from ramlico.data.transforms import build_eval_transform
from ramlico.losses.contrastive import multi_positive_contrastive_loss
from ramlico.modules.ladder import saa_tower
from ramlico.toy.captions import caption_vocabulary, truth_matrix
from ramlico.toy.card import file_sha256, write_card
from ramlico.toy.data import CaptionedBatch, make_batch
from ramlico.toy.evaluation import zero_shot_report
from ramlico.toy.training import (
    StepDataset,
    add_recipe_arguments,
    check_recipe,
    cosine_lr,
    cpu_seconds,
    identity_collate,
    load_state,
    one_thread,
    recipe_from_args,
    save_state,
)
from ramlico.toy.vocabulary import toy_descriptors
from ramlico.utils import get_logger
from ramlico.zeroshot.descriptors import descriptor_texts

__all__ = ["CompactTokenCLIP", "Recipe", "main", "train"]

log = get_logger(__name__)
Tensor = torch.Tensor
WEIGHTS_NAME = "clip_toy.safetensors"
SAVE_EVERY = 100  # steps between resume states


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every setting that changes the trained weights (the model card's ``recipe``)."""

    model_name: str = TOY_CLIP
    seed: int = 0
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1.5e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    beta2: float = 0.98
    max_logit_scale: float = 100.0
    local_weight: float = 0.5
    local_readout: str = "saa"
    threads: int = 2

    def __post_init__(self) -> None:
        check_recipe(self)
        if self.local_readout not in ("saa", "patch"):
            raise ValueError(
                f"--local-readout must be 'saa' or 'patch', got {self.local_readout!r}"
            )


def _known_texts() -> list[str]:
    """Every text whose tokens the toy CLIP learns: caption words, prompts, descriptors."""
    names = list(toy_descriptors())
    sentences = [s for per_class in descriptor_texts(toy_descriptors(), names) for s in per_class]
    return caption_vocabulary() + names + sentences + ["a photo of a ."]


class CompactTokenCLIP(nn.Module):
    """An open_clip CLIP trained with a token table restricted to the toy world's tokens.

    Args:
        model: the open_clip model (its ``token_embedding`` is replaced by the used rows).
        tokenizer: the model's tokenizer.
        texts: texts whose tokens make up the compact table (special tokens are added).
    """

    used: Tensor
    lookup: Tensor

    def __init__(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> None:
        super().__init__()
        vocab = model.token_embedding.num_embeddings
        ids = tokenizer(list(texts))
        used = sorted(set(ids.flatten().tolist()) | {0, vocab - 1, vocab - 2})  # pad, EOT, SOT
        self.tokenizer = tokenizer
        self.vocab_size = vocab
        self.register_buffer("used", torch.tensor(used), persistent=False)
        lookup = torch.full((vocab,), -1, dtype=torch.long)
        lookup[self.used] = torch.arange(len(used))
        self.register_buffer("lookup", lookup, persistent=False)
        # sorted ids keep EOT the largest id: open_clip pools text at argmax(ids) == EOT
        rows = model.token_embedding.weight.detach()[self.used].clone()
        model.token_embedding = nn.Embedding.from_pretrained(rows, freeze=False)
        self.model: Any = model  # open_clip CLIP (untyped towers, see backbones.clip)

    def tokens(self, texts: Sequence[str]) -> Tensor:
        """``(B, L)`` compact token ids; a token outside the table raises ValueError."""
        mapped = self.lookup[self.tokenizer(list(texts))]
        if (mapped < 0).any():
            bad = [t for t, row in zip(texts, mapped, strict=True) if (row < 0).any()]
            raise ValueError(f"texts use tokens outside the toy vocabulary: {bad[:3]}")
        return mapped

    def forward(
        self, images: Tensor, texts: Sequence[str], local_readout: str = "saa"
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Unit image ``(B, D)``, region ``(B, N, D)`` and text ``(B, D)`` features, logit scale.

        The image feature is open_clip's (class token, ``ln_post``, ``proj``). Regions: with
        ``local_readout="saa"`` the parameter-free value-value read-out of RAM's ladder
        (:func:`ramlico.modules.ladder.saa_tower`, then ``ln_post`` and
        ``proj``); with ``"patch"`` the last block's patch tokens (MaskCLIP's read-out).
        """
        visual = self.model.visual
        x, r = saa_tower(visual, images)
        img = F.normalize(project_visual_tokens(visual, x[:, 0]), dim=-1)
        tokens = r if local_readout == "saa" else x
        regions = F.normalize(project_visual_tokens(visual, tokens[:, 1:]), dim=-1)
        txt = self.model.encode_text(self.tokens(texts), normalize=True)
        return img, regions, txt, self.model.logit_scale.exp()

    def export_state(self) -> dict[str, Tensor]:
        """The open_clip state dict with the full token table (zero rows for unused tokens)."""
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        compact = state.pop("token_embedding.weight")
        full = compact.new_zeros(self.vocab_size, compact.shape[1])
        full[self.used] = compact
        state["token_embedding.weight"] = full
        return state


class _BatchStream:
    """Batch ``s`` of the recipe's stream: samples ``s * B ... (s + 1) * B - 1``."""

    def __init__(self, recipe: Recipe, image_size: int) -> None:
        self.seed, self.batch_size = recipe.seed, recipe.batch_size
        self.image_size = image_size
        self.transform = build_eval_transform(image_size)

    def __call__(self, step: int) -> CaptionedBatch:
        b = self.batch_size
        return make_batch(
            self.seed, range(step * b, (step + 1) * b), self.transform, self.image_size
        )


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW; no weight decay on gains, biases, embeddings and the temperature (CLIP's rule)."""
    decay: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        plain = p.ndim < 2 or "embedding" in name or "logit_scale" in name or "ln" in name
        (rest if plain else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, recipe.beta2), eps=1e-6)


def build_model(recipe: Recipe) -> CompactTokenCLIP:
    """The seeded, randomly initialised model in its compact-token training form."""
    register_model_configs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = open_clip.create_model(recipe.model_name, pretrained=None)
    return CompactTokenCLIP(model, open_clip.get_tokenizer(recipe.model_name), _known_texts())


def load_exported(state: dict[str, Tensor], model_name: str = TOY_CLIP) -> CLIPBackbone:
    """A frozen :class:`CLIPBackbone` holding an exported state (rounded through fp16)."""
    backbone = CLIPBackbone(model_name, pretrained=None)
    backbone.model.load_state_dict({k: v.half().float() for k, v in state.items()})
    return backbone


def train(recipe: Recipe, out: Path, resume: bool = False, log_every: int = 50,
          eval_every: int = 500, workers: int = 1) -> dict:  # fmt: skip
    """Train, export and evaluate; returns the model card's data (also written to ``out``)."""
    torch.set_num_threads(recipe.threads)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(recipe)
    optimizer = _optimizer(model, recipe)
    state_path, log_path = out / "train_state.pt", out / "train_log.jsonl"
    start, spent = 0, {"wall_s": 0.0, "cpu_s": 0.0}
    if resume and state_path.is_file():
        start, spent = load_state(state_path, recipe, model.model, optimizer)
        log.info("resuming from step %d (%s)", start, state_path)
    elif log_path.exists():
        log_path.unlink()
    stream = _BatchStream(recipe, model.model.visual.image_size[0])
    loader = torch.utils.data.DataLoader(
        StepDataset(stream, start, recipe.steps), batch_size=None, num_workers=workers,
        worker_init_fn=one_thread, collate_fn=identity_collate,
    )  # fmt: skip
    t_wall, t_cpu = time.perf_counter() - spent["wall_s"], cpu_seconds() - spent["cpu_s"]
    loss = torch.tensor(float("nan"))
    for step, batch in zip(range(start, recipe.steps), loader, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.lr, recipe.warmup_steps, recipe.steps)
        img, regions, txt, scale = model(batch.images, batch.texts, recipe.local_readout)
        positives = truth_matrix(batch.scene_facts, batch.caption_facts)
        loss = multi_positive_contrastive_loss(scale * img @ txt.t(), positives)
        if recipe.local_weight > 0:
            local = torch.einsum("bnd,cd->bnc", regions, txt).amax(dim=1)  # best region (B, B)
            loss = loss + recipe.local_weight * multi_positive_contrastive_loss(
                scale * local, positives
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.model.logit_scale.clamp_(0, math.log(recipe.max_logit_scale))
        done = step + 1
        spent = {"wall_s": time.perf_counter() - t_wall, "cpu_s": cpu_seconds() - t_cpu}
        row = {"step": done, "loss": round(loss.item(), 4), "logit_scale": round(scale.item(), 2)}
        row |= {"lr": optimizer.param_groups[0]["lr"], **{k: round(v, 1) for k, v in spent.items()}}
        if eval_every and (done % eval_every == 0 or done == recipe.steps):
            probe = zero_shot_report(load_exported(model.export_state(), recipe.model_name))
            row |= {k: v for k, v in probe.items() if k != "easy_top1_per_class"}
        if done % log_every == 0 or done == recipe.steps or "easy_top1" in row:
            log.info(
                "step %d/%d %s", done, recipe.steps, {k: v for k, v in row.items() if k != "step"}
            )
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        if done % SAVE_EVERY == 0 or done == recipe.steps:
            save_state(state_path, recipe, model.model, optimizer, done, spent)
    return export(model, recipe, out, spent, loss.item())


def export(model: CompactTokenCLIP, recipe: Recipe, out: Path, spent: dict, loss: float) -> dict:
    """Write the fp16 safetensors file, evaluate it as loaded, and write the model card."""
    state = {k: v.half().contiguous() for k, v in model.export_state().items()}
    weights = out / WEIGHTS_NAME
    # one metadata key: safetensors writes several in a random order (the sha256 would vary)
    save_file(state, str(weights), metadata={"ramlico": json.dumps(dataclasses.asdict(recipe))})
    backbone = CLIPBackbone(recipe.model_name, pretrained=str(weights))
    card: dict[str, Any] = {
        "model_name": recipe.model_name,
        "tag": "toy",
        "file": WEIGHTS_NAME,
        "sha256": file_sha256(weights),
        "bytes": weights.stat().st_size,
        "parameters": sum(v.numel() for v in state.values()),
        "recipe": dataclasses.asdict(recipe),
        "zero_shot": zero_shot_report(backbone),
        "training": {
            "final_loss": round(loss, 4),
            "wall_s": round(spent["wall_s"], 1),
            "cpu_s": round(spent["cpu_s"], 1),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
        },
    }
    write_card(card, out)
    summary = {k: v for k, v in card["zero_shot"].items() if "per_class" not in k}
    log.info("wrote %s (%d bytes, sha256 %s); zero-shot %s", weights, card["bytes"],
             card["sha256"][:12], summary)  # fmt: skip
    return card


def install(out: Path, target: Path = BUNDLED_WEIGHTS_DIR) -> None:
    """Copy the weights and the model card from ``out`` into the package's weights folder."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, "clip_toy.json", "MODEL_CARD.md"):
        shutil.copy2(out / name, target / name)
    log.info("installed the toy CLIP into %s", target)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m ramlico.toy.train_clip", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("logs/toy_clip"), help="output folder")
    add_recipe_arguments(parser, Recipe)
    parser.add_argument("--resume", action="store_true", help="continue from --out/train_state.pt")
    parser.add_argument("--eval-every", type=int, default=500, help="zero-shot probe every N steps")
    parser.add_argument("--install", action="store_true", help="copy the result into the package")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes rendering ahead (0 = none)"
    )
    args = parser.parse_args(argv)
    recipe = recipe_from_args(Recipe, args)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.logger.setLevel(logging.INFO)  # this script's progress; other libraries stay quiet
    card = train(recipe, args.out, resume=args.resume, eval_every=args.eval_every,
                 workers=args.workers)  # fmt: skip
    if args.install:
        install(args.out)
    return card


if __name__ == "__main__":
    main()
