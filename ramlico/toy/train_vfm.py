"""Train the toy vision-only model (OTFusion's DINOv2 stand-in) on toy-world scenes (CPU, minutes).

    python -m ramlico.toy.train_vfm --out logs/toy_vfm             # the shipped recipe, seed 0
    python -m ramlico.toy.train_vfm --out /tmp/v --steps 20        # a smoke run
    python -m ramlico.toy.train_vfm --out logs/toy_vfm --resume    # continue a killed run

OTFusion fuses CLIP's zero-shot prior with the class structure of a vision-only model's feature
space. No self-supervised weights can be downloaded here, and an untrained network's features
carry no structure, so the project trains its own: a timm ``regnetx_002`` (2.3 M parameters) on
the same seeded scene stream as the toy CLIP (:mod:`ramlico.toy.data`, the images only), to
recognise every object in a scene: a multi-label binary cross-entropy over all 49 colour x shape
combinations of the world (the 20 label classes and every distractor: purple, white, black,
rings, hexagons). It never sees text or class names; it learns what the objects look like, not
what they are called, nor which of them are the 20 classes. Its pooled features (``num_classes=0``)
are what OTFusion reads. This is image-tag supervision, stronger than DINOv2's self-supervision:
short self-supervised (SimCLR-style) runs on this world grouped the hard set far less well.

AdamW, linear warm-up then cosine decay, random horizontal flips. Deterministic for a seed like
:mod:`ramlico.toy.train_clip`: sample ``i`` is a function of ``(seed, i)``, initialisation is
seeded and ``--threads`` is fixed. Writes ``vfm_toy.safetensors`` (fp16, without the tag head),
``vfm_toy.json`` (the card's data), ``VFM_CARD.md``, ``train_log.jsonl`` and ``train_state.pt``
(resume) to ``--out``; ``--install`` also copies the weights and the card into the package.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.backbones.registry import BUNDLED_WEIGHTS_DIR, TOY_CLIP, TOY_VFM
from ramlico.data.scenes import ALL_COLOURS, ALL_SHAPES, render_scene
from ramlico.data.transforms import build_eval_transform
from ramlico.toy.card import file_sha256
from ramlico.toy.data import pretraining_scene
from ramlico.toy.evaluation import vision_report
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
from ramlico.toy.vfm_card import CARD_JSON, CARD_MD, write_card
from ramlico.utils import get_logger

__all__ = ["TAGS", "Recipe", "main", "tag_batch", "train"]

log = get_logger(__name__)
Tensor = torch.Tensor
WEIGHTS_NAME = "vfm_toy.safetensors"
SAVE_EVERY = 100  # steps between resume states
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: The tag vocabulary: every colour x shape of the world (labels and distractors), 49.
TAGS: tuple[str, ...] = tuple(f"{c} {s}" for c in ALL_COLOURS for s in ALL_SHAPES)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every setting that changes the trained weights (the model card's ``recipe``)."""

    model_name: str = TOY_VFM
    seed: int = 0
    steps: int = 1200
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    threads: int = 2

    def __post_init__(self) -> None:
        check_recipe(self)


def tag_batch(seed: int, indices: Sequence[int], image_size: int = 64) -> tuple[Tensor, Tensor]:
    """Samples ``indices`` of the stream of ``seed``: ``(B, 3, S, S)`` ImageNet-normalised images
    (each flipped left-right with probability 1/2) and ``(B, 49)`` multi-hot :data:`TAGS`.

    The images are the toy CLIP's pre-training images of the same seed (the same generator
    draws, :func:`ramlico.toy.data.make_batch`)."""
    transform = build_eval_transform(image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    images, targets = [], torch.zeros(len(indices), len(TAGS))
    for row, i in enumerate(indices):
        rng = np.random.default_rng([seed, int(i)])
        objects, n_lines = pretraining_scene(rng, image_size)
        image = transform(render_scene(objects, image_size, rng, n_lines))
        images.append(image.flip(-1) if rng.random() < 0.5 else image)
        for obj in objects:
            targets[row, TAGS.index(f"{obj.colour} {obj.shape}")] = 1.0
    return torch.stack(images), targets


class _TagStream:
    """Batch ``s`` of the recipe's stream: samples ``s * B ... (s + 1) * B - 1``."""

    def __init__(self, recipe: Recipe) -> None:
        self.seed, self.batch_size = recipe.seed, recipe.batch_size

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        b = self.batch_size
        return tag_batch(self.seed, range(step * b, (step + 1) * b))


def build_model(recipe: Recipe) -> Any:
    """The seeded, randomly initialised timm model with its 49-way tag head."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        return timm.create_model(recipe.model_name, pretrained=False, num_classes=len(TAGS))


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW; no weight decay on gains and biases (1-d parameters)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr)


def train(recipe: Recipe, out: Path, resume: bool = False, log_every: int = 50,
          workers: int = 1) -> dict:  # fmt: skip
    """Train, export and evaluate; returns the model card's data (also written to ``out``)."""
    torch.set_num_threads(recipe.threads)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(recipe)
    optimizer = _optimizer(model, recipe)
    state_path, log_path = out / "train_state.pt", out / "train_log.jsonl"
    start, spent = 0, {"wall_s": 0.0, "cpu_s": 0.0}
    if resume and state_path.is_file():
        start, spent = load_state(state_path, recipe, model, optimizer)
        log.info("resuming from step %d (%s)", start, state_path)
    elif log_path.exists():
        log_path.unlink()
    loader = torch.utils.data.DataLoader(
        StepDataset(_TagStream(recipe), start, recipe.steps), batch_size=None,
        num_workers=workers, worker_init_fn=one_thread, collate_fn=identity_collate,
    )  # fmt: skip
    t_wall, t_cpu = time.perf_counter() - spent["wall_s"], cpu_seconds() - spent["cpu_s"]
    model.train()
    loss = torch.tensor(float("nan"))
    for step, (images, targets) in zip(range(start, recipe.steps), loader, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, recipe.lr, recipe.warmup_steps, recipe.steps)
        loss = F.binary_cross_entropy_with_logits(model(images), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        spent = {"wall_s": time.perf_counter() - t_wall, "cpu_s": cpu_seconds() - t_cpu}
        if done % log_every == 0 or done == recipe.steps:
            row = {"loss": round(loss.item(), 4), "lr": optimizer.param_groups[0]["lr"]}
            row |= {k: round(v, 1) for k, v in spent.items()}
            log.info("step %d/%d %s", done, recipe.steps, row)
            row = {"step": done, **row}
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
        if done % SAVE_EVERY == 0 or done == recipe.steps:
            save_state(state_path, recipe, model, optimizer, done, spent)
    return export(model, recipe, out, spent, loss.item())


def export_state(model: Any) -> dict[str, Tensor]:
    """The feature extractor's state (tag head dropped), floating tensors in fp16."""
    head = {f"{model.default_cfg.get('classifier', 'head.fc')}.{p}" for p in ("weight", "bias")}
    return {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
        if k not in head
    }


def export(model: Any, recipe: Recipe, out: Path, spent: dict, loss: float) -> dict:
    """Write the fp16 safetensors file, evaluate it as loaded, and write the model card."""
    state = export_state(model)
    weights = out / WEIGHTS_NAME
    # one metadata key: safetensors writes several in a random order (the sha256 would vary)
    save_file(state, str(weights), metadata={"ramlico": json.dumps(dataclasses.asdict(recipe))})
    backbone = TimmBackbone(recipe.model_name, pretrained=str(weights))
    card: dict[str, Any] = {
        "model_name": recipe.model_name,
        "tag": "toy",
        "file": WEIGHTS_NAME,
        "sha256": file_sha256(weights),
        "bytes": weights.stat().st_size,
        "parameters": sum(v.numel() for v in state.values() if v.is_floating_point()),
        "feature_dim": backbone.num_features,
        "recipe": dataclasses.asdict(recipe),
        "features": vision_report(backbone, CLIPBackbone(TOY_CLIP, pretrained="toy")),
        "training": {
            "final_loss": round(loss, 4),
            "wall_s": round(spent["wall_s"], 1),
            "cpu_s": round(spent["cpu_s"], 1),
            "torch": torch.__version__,
            "timm": timm.__version__,
        },
    }
    write_card(card, out)
    log.info("wrote %s (%d bytes, sha256 %s); features %s", weights, card["bytes"],
             card["sha256"][:12], card["features"])  # fmt: skip
    return card


def install(out: Path, target: Path = BUNDLED_WEIGHTS_DIR) -> None:
    """Copy the weights and the model card from ``out`` into the package's weights folder."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, CARD_JSON, CARD_MD):
        shutil.copy2(out / name, target / name)
    log.info("installed the toy VFM into %s", target)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m ramlico.toy.train_vfm", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("logs/toy_vfm"), help="output folder")
    add_recipe_arguments(parser, Recipe)
    parser.add_argument("--resume", action="store_true", help="continue from --out/train_state.pt")
    parser.add_argument("--install", action="store_true", help="copy the result into the package")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes rendering ahead (0 = none)"
    )
    args = parser.parse_args(argv)
    recipe = recipe_from_args(Recipe, args)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.logger.setLevel(logging.INFO)  # this script's progress; other libraries stay quiet
    card = train(recipe, args.out, resume=args.resume, workers=args.workers)
    if args.install:
        install(args.out)
    return card


if __name__ == "__main__":
    main()
