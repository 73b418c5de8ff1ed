"""Draw the docs' region-evidence pictures from the toy-world demos.

    python tools/region_pictures.py                      # trains RAM and LICO demos (~2 min CPU)
    python tools/region_pictures.py --ram RAM_RUN/checkpoints/last.ckpt --lico LICO_RUN/...ckpt

Draws one scene of the generated shapes that no demo trained on (``--seed``, default 3) and writes

* ``docs/images/tag_example.png`` (README, "Tag your own images"): RAM on the toy CLIP, the
  image, then one overlay of the OT plan per label (present labels first, then an absent one)
  with its calibrated probability, and the tags (``--tag-seed`` 2 is a scene where both present
  labels pass the calibrated threshold; on many drawn scenes one of them falls just below it);
* ``docs/images/toy_regions.png`` (docs/toy_world.md): one row per evidence source (zero-shot
  CLIP's raw patch similarity and its SAA read-out, RAM's OT plan, LaZSL's transported crops,
  LICO's Grad-CAM), one column per present label.

Without ``--ram`` / ``--lico`` the script trains ``python train.py model/backbone=clip_toy``
(the RAM demo) and ``python train.py experiment=lico_demo`` into ``--work`` (seeded, so the
pictures repeat for a torch build and thread count).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import ramlico
from ramlico.data.generated import draw_scene
from ramlico.explain.heatmaps import heatmap_overlay
from ramlico.explain.regions import lazsl_heatmaps

SIDE = 128
PRESENT = ["red circle", "blue square", "yellow star"]  # blue square: unseen by RAM's training
TAGGED = (["red circle", "blue square"], "green cross")  # README picture: present, absent
TOY = ["model/backbone=clip_toy"]


def train_demo(overrides: list[str], work: Path) -> Path:
    """Train a demo with the shipped configs; its ``last.ckpt``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ramlico.cli import train

    out = work / "_".join(o.split("=")[-1] for o in overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module("ramlico.configs", version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={out}",
                                          f"paths.data_dir={work / 'data'}",
                                          f"paths.log_dir={work / 'logs'}"])  # fmt: skip
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def lazsl_maps(image: Image.Image, labels: list[str]) -> np.ndarray:
    """``(C, h, w)`` LaZSL transported-crop maps of ``labels`` (toy CLIP, toy descriptors)."""
    predictor = ramlico.load_predictor("lazsl_demo", overrides=TOY, device="cpu")
    model = predictor.model
    model.label_names["picture"] = list(labels)
    views = model.eval_transform()(image, 0)
    batch = type(views)(views.views[None], views.original, views.boxes[None])
    heat, _ = lazsl_heatmaps(model, batch, "picture", [image.size])
    return heat[0].numpy()


def sheet(rows: list[tuple[str, list[tuple[Image.Image, str]]]], title: str) -> Image.Image:
    """Tiles in rows, each row with a name on its left and a caption under each tile."""
    font = ImageFont.load_default()
    left = 120 if any(name for name, _ in rows) else 8
    cols = max(len(tiles) for _, tiles in rows)
    row_h = SIDE + 22
    canvas = Image.new("RGB", (left + cols * (SIDE + 8), 26 + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 6), title, fill="black", font=font)
    for r, (name, tiles) in enumerate(rows):
        y = 26 + r * row_h
        draw.text((8, y + SIDE // 2 - 6), name, fill="black", font=font)
        for c, (tile, caption) in enumerate(tiles):
            x = left + c * (SIDE + 8)
            canvas.paste(tile, (x, y))
            draw.text((x, y + SIDE + 3), caption, fill="black", font=font)
    return canvas


def save(picture: Image.Image, path: Path) -> None:
    """A 256-colour PNG (the pictures stay small in the repository)."""
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ram", help="RAM checkpoint (default: train the toy RAM demo)")
    parser.add_argument("--lico", help="LICO checkpoint (default: train the LICO demo)")
    parser.add_argument("--work", default="logs/region_pictures", help="training runs go here")
    parser.add_argument("--seed", type=int, default=3, help="seed of the evidence scene")
    parser.add_argument("--tag-seed", type=int, default=2, help="seed of the README scene")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    ram_ckpt = args.ram or train_demo([f"seed={42}", *TOY], work)
    lico_ckpt = args.lico or train_demo(["experiment=lico_demo"], work)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ram = ramlico.load_predictor(ram_ckpt, device="cpu")
    present, absent = TAGGED
    image, _ = draw_scene(present, 64, np.random.default_rng(args.tag_seed))
    big = image.resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    labels = [*present, absent]
    pred = ram(image, labels)[0]
    tiles = [(big, "input")] + [
        (pred.overlay(n, big), f"{n}: p={pred.probabilities[i]:.2f}") for i, n in enumerate(labels)
    ]
    tags = ", ".join(pred.tags) or "(none)"
    save(sheet([("", tiles)], f"RAM (toy CLIP), OT plan per label; tags: {tags}"),
         out / "tag_example.png")  # fmt: skip

    image, _ = draw_scene(PRESENT, 64, np.random.default_rng(args.seed))
    big = image.resize((SIDE, SIDE), Image.Resampling.BICUBIC)

    rows = []
    clip = ramlico.load_predictor("clip_zeroshot_demo", overrides=TOY, device="cpu")
    clip_patch = ramlico.load_predictor(
        "clip_zeroshot_demo", overrides=[*TOY, "model.readout=patch"], device="cpu"
    )
    lico = ramlico.load_predictor(lico_ckpt, device="cpu")
    for name, predictor in (("CLIP raw patch\nsimilarity", clip_patch),
                            ("CLIP SAA\nread-out", clip), ("RAM OT plan", ram),
                            ("LICO Grad-CAM", lico)):  # fmt: skip
        p = predictor(image, PRESENT)[0]
        rows.append((name, [(big, "input")] + [(p.overlay(n, big), n) for n in PRESENT]))
    crops = lazsl_maps(image, PRESENT)
    rows.insert(3, ("LaZSL\ntransported crops", [(big, "input")] + [
        (heatmap_overlay(big, crops[c]), n) for c, n in enumerate(PRESENT)
    ]))  # fmt: skip
    save(sheet(rows, "Region evidence per label on one drawn scene"), out / "toy_regions.png")
    for f in ("tag_example.png", "toy_regions.png"):
        print(f"wrote {out / f} ({(out / f).stat().st_size // 1024} KB)")  # noqa: T201
    print(f"RAM tags: {pred.tags}")  # noqa: T201


if __name__ == "__main__":
    main()
