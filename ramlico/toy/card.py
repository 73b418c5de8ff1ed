"""The toy CLIP's model card: ``clip_toy.json`` (data) and ``MODEL_CARD.md`` (rendered from it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ramlico.data.generated import GENERATED_CLASSES
from ramlico.toy.captions import FAMILY_WEIGHTS
from ramlico.toy.data import LAYOUT_WEIGHTS

__all__ = ["file_sha256", "read_card", "render_card", "reproduce_command", "reproduce_section",
           "write_card", "write_card_files"]

CARD_JSON = "clip_toy.json"
CARD_MD = "MODEL_CARD.md"
ARCHITECTURE = (
    "open_clip ViT, 64 px, 8 px patches, vision width 96 x 4 blocks, text width 64 x 3 blocks "
    "(context 32), joint space 64-d"
)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(folder: str | Path, name: str = CARD_JSON) -> dict[str, Any]:
    """The card data written by :func:`write_card` (``name``: another model's card file)."""
    return json.loads((Path(folder) / name).read_text(encoding="utf-8"))


def reproduce_command(module: str, out: str, recipe: dict[str, Any], defaults: Any) -> str:
    """``python -m <module> --out <out>`` plus a flag per recipe value that is not the default."""
    flags = [
        f"--{k.replace('_', '-')} {v}"
        for k, v in recipe.items()
        if k != "model_name" and getattr(defaults, k) != v
    ]
    return " ".join([f"python -m {module} --out {out}", *flags])


def reproduce_section(command: str) -> str:
    """The cards' closing "Reproduce" section: ``command`` and what "the same bits" means."""
    return f"""## Reproduce

```bash
{command}
```

Same seed, torch build, CPU type and `--threads` give the same bits (same sha256); elsewhere the
floating-point rounding differs and the numbers above agree to within about a point.
"""


def write_card_files(text: str, card: dict[str, Any], folder: str | Path, json_name: str,
                     md_name: str) -> None:  # fmt: skip
    """Write a card's data (``json_name``) and its rendered ``text`` (``md_name``)."""
    folder = Path(folder)
    (folder / json_name).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    (folder / md_name).write_text(text, encoding="utf-8")


def _reproduce(recipe: dict[str, Any]) -> str:
    from ramlico.toy.train_clip import Recipe

    return reproduce_command("ramlico.toy.train_clip", "logs/toy_clip", recipe, Recipe())


def render_card(card: dict[str, Any]) -> str:
    """Markdown model card from the card data."""
    zs, tr, rc = card["zero_shot"], card["training"], card["recipe"]
    per_class = zs["easy_top1_per_class"]
    rows = "\n".join(f"| {c} | {per_class[c]:.1f} |" for c in GENERATED_CLASSES)
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in rc.items())
    layouts = ", ".join(f"{k} {v:.0%}" for k, v in LAYOUT_WEIGHTS.items())
    total = sum(FAMILY_WEIGHTS.values())
    families = ", ".join(f"{k} {v / total:.0%}" for k, v in FAMILY_WEIGHTS.items())
    images = rc["steps"] * rc["batch_size"]
    probes = "\n".join(
        f"| {where} | {metric} | {zs[key]:.1f} |"
        for where, metric, key in (
            ("one shape per image (`data=classification_generated`, 200)", "top-1", "easy_top1"),
            ("same, worst label", "top-1", "easy_top1_min_class"),
            ("hard: among distractors, clutter (`..._hard`, 200)", "top-1", "hard_top1"),
            ("1-3 shapes per image (`data=generated` test, 160)", "mAP", "multilabel_mAP"),
            ("same, each label scored by its best raw patch token", "mAP", "multilabel_patch_mAP"),
            ("same, by its best SAA region (RAM's read-out)", "mAP", "multilabel_saa_mAP"),
        )
    )
    return f"""# Model card: toy CLIP (`{card["model_name"]}`, tag `{card["tag"]}`)

A tiny CLIP trained from scratch by this project on its synthetic toy world of coloured shapes, so
that every demo and behaviour test runs on a CLIP whose text and image towers mean something,
offline and on CPU. It knows nothing about real photographs; it is not a substitute for real
CLIP weights and its numbers are not comparable to any paper's.

## Use

```python
from ramlico.backbones import CLIPBackbone
clip = CLIPBackbone("{card["model_name"]}", pretrained="toy")   # offline, from the package
```

In configs: `model/backbone=clip_toy`. Plain open_clip:
`open_clip.create_model(name, pretrained=str(ramlico.backbones.bundled_weights(name, "toy")))`
with `name = "{card["model_name"]}"` (after `ramlico.backbones.register_model_configs()`).

## File

| | |
|---|---|
| file | `{card["file"]}` (safetensors, fp16) |
| sha256 | `{card["sha256"]}` |
| size | {card["bytes"]:,} bytes, {card["parameters"]:,} parameters |
| architecture | {ARCHITECTURE} |
| config | `ramlico/backbones/model_configs/{card["model_name"]}.json` |

## Zero-shot accuracy (prompt "a photo of a {{label}}.", 20 labels, chance 5 %)

| probe set | metric | value |
|---|---|---|
{probes}

Per label (one shape per image, 10 images each):

| label | top-1 |
|---|---|
{rows}

Checked by `tests/toy/test_shipped_clip.py` (the file's sha256 against this card, and the
zero-shot numbers above recomputed from the loaded file).

## Training data

An endless seeded stream of 64 px scenes (`ramlico.toy.data`): layouts {layouts}; all 20
colour-shape labels (the ones RAM holds out as unseen included: like real CLIP, pre-training sees
every concept) plus distractors (purple / white / black objects, rings, hexagons) and line
clutter. Each scene gets one caption (`ramlico.toy.captions`), by family: {families}. Examples:
"a photo of a red circle.", "two blue stars and a purple ring.", "a shape with five points.",
"a yellow cross in the top left.", "red star, which has five pointed tips." The loss counts every
caption in the batch that is true of an image as a positive. {images:,} scenes were seen (none
twice).

## Recipe

| setting | value |
|---|---|
{recipe}

AdamW (beta1 0.9, eps 1e-6; no decay on gains, biases, embeddings, temperature), linear warm-up
then cosine decay to 0, learnable temperature initialised at 0.07. Training took
{tr["wall_s"]:.0f} s wall / {tr["cpu_s"]:.0f} s CPU ({rc["threads"]} threads; torch {tr["torch"]},
open_clip {tr["open_clip"]}); final loss {tr["final_loss"]:.3f}.

{reproduce_section(_reproduce(rc))}"""


def write_card(card: dict[str, Any], folder: str | Path) -> None:
    """Write ``clip_toy.json`` and ``MODEL_CARD.md`` into ``folder``."""
    write_card_files(render_card(card), card, folder, CARD_JSON, CARD_MD)
