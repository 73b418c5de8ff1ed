"""Make the README's "Tag your own images" picture: one drawn scene and its label heatmaps.

    python docs/make_tag_figure.py logs/train/runs/<date>/checkpoints/last.ckpt
    python docs/make_tag_figure.py clip_zeroshot_demo          # any checkpoint or experiment

Draws a scene of the generated shapes (seed 3, not a training image), tags it with the model and
writes ``docs/images/tag_example.png``: the image, then one overlay per label (present labels
first) with its probability, and the tags in the title.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import ramlico
from ramlico.data.generated import draw_scene

SIDE = 192


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="checkpoint or experiment")
    parser.add_argument("--out", default="docs/images/tag_example.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--absent", default="green star", help="a label not in the scene")
    args = parser.parse_args()
    predictor = ramlico.load_predictor(args.source, device="cpu")
    present = ["red circle", "blue square"]
    image, _ = draw_scene(present, 64, np.random.default_rng(args.seed))
    labels = [*present, args.absent]
    pred = predictor(image, labels)[0]
    big = image.resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    tiles = [(big, "input")] + [
        (pred.overlay(n, big), f"{n}: p={pred.probabilities[i]:.2f}") for i, n in enumerate(labels)
    ]
    canvas = Image.new("RGB", (len(tiles) * (SIDE + 8) + 8, SIDE + 52), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((8, 6), f"tags: {', '.join(pred.tags) or '(none)'}", fill="black", font=font)
    for k, (tile, caption) in enumerate(tiles):
        x = 8 + k * (SIDE + 8)
        canvas.paste(tile, (x, 24))
        draw.text((x, SIDE + 30), caption, fill="black", font=font)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out)
    print(f"wrote {args.out}; tags {pred.tags}")  # noqa: T201


if __name__ == "__main__":
    main()
