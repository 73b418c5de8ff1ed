"""The toy VFM's model card: ``vfm_toy.json`` (data) and ``VFM_CARD.md`` (rendered from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ramlico.toy.card import read_card as read_any_card
from ramlico.toy.card import reproduce_command, reproduce_section, write_card_files

__all__ = ["CARD_JSON", "CARD_MD", "read_card", "render_card", "write_card"]

CARD_JSON = "vfm_toy.json"
CARD_MD = "VFM_CARD.md"


def read_card(folder: str | Path) -> dict[str, Any]:
    """The card data written by :func:`write_card`."""
    return read_any_card(folder, CARD_JSON)


def _reproduce(recipe: dict[str, Any]) -> str:
    from ramlico.toy.train_vfm import Recipe

    return reproduce_command("ramlico.toy.train_vfm", "logs/toy_vfm", recipe, Recipe())


def render_card(card: dict[str, Any]) -> str:
    """Markdown model card from the card data."""
    ft, tr, rc = card["features"], card["training"], card["recipe"]
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in rc.items())
    images = rc["steps"] * rc["batch_size"]
    probes = "\n".join(
        f"| {what} | {ft[key]:.1f} |"
        for what, key in (
            ("one shape per image (`data=classification_generated`, 200): nearest class mean",
             "easy_ncm_top1"),
            ("hard: among distractors, clutter (`..._hard`, 200): nearest class mean",
             "hard_ncm_top1"),
            ("hard: the toy CLIP's zero-shot prior alone", "hard_clip_top1"),
            ("hard: OTFusion (paper defaults) fusing that prior with these features",
             "hard_otfusion_top1"),
        )
    )  # fmt: skip
    return f"""# Model card: toy VFM (timm `{card["model_name"]}`, tag `{card["tag"]}`)

A small vision-only model trained from scratch by this project on its synthetic toy world of
coloured shapes: OTFusion's stand-in for DINOv2 in the demos and behaviour tests, offline and on
CPU. It knows nothing about real photographs and never saw text or class names.

## Use

```python
from ramlico.backbones import TimmBackbone
vfm = TimmBackbone("{card["model_name"]}", pretrained="toy")   # offline, from the package
features = vfm(images)   # (B, {card["feature_dim"]}), images (B, 3, 64, 64), ImageNet mean/std
```

In configs: `experiment=otfusion_demo` (its `model.dino`).

## File

| | |
|---|---|
| file | `{card["file"]}` (safetensors, fp16; feature extractor only, no tag head) |
| sha256 | `{card["sha256"]}` |
| size | {card["bytes"]:,} bytes, {card["parameters"]:,} parameters |
| architecture | timm `{card["model_name"]}`, 64 px input, {card["feature_dim"]}-d pooled features |

## What its features do (20 label classes, chance 5 %)

| probe | top-1 |
|---|---|
{probes}

Nearest class mean uses the labels to place the means: it measures how well the feature space
groups the classes, it is not a zero-shot number. Checked by `tests/toy/test_shipped_vfm.py`
(the file's sha256 against this card, and these numbers recomputed from the loaded file).

## Training

The toy CLIP's pre-training images (`ramlico.toy.data`, the same seeded stream, without
captions), each flipped left-right with probability 1/2. Target: which of the world's 49 colour x
shape combinations (the 20 label classes and every distractor) appear in the scene, as a
multi-label binary cross-entropy. {images:,} scenes were seen (none twice). This is image-tag
supervision, not DINOv2's self-supervision: it teaches what the objects look like, not what they
are called nor which are the 20 classes.

| setting | value |
|---|---|
{recipe}

AdamW (no decay on gains and biases), linear warm-up then cosine decay to 0. Training took
{tr["wall_s"]:.0f} s wall / {tr["cpu_s"]:.0f} s CPU ({rc["threads"]} threads; torch {tr["torch"]},
timm {tr["timm"]}); final loss {tr["final_loss"]:.4f}.

{reproduce_section(_reproduce(rc))}"""


def write_card(card: dict[str, Any], folder: str | Path) -> None:
    """Write ``vfm_toy.json`` and ``VFM_CARD.md`` into ``folder``."""
    write_card_files(render_card(card), card, folder, CARD_JSON, CARD_MD)
