"""The built-in data set: procedural images of coloured shapes, generated locally (no download).

Each image (default 64x64 RGB) shows 1-3 objects on a noisy grey background, one per quadrant of the
image. An object's label is its colour and shape, e.g. ``"red circle"``: 4 colours x 5 shapes = 20
labels, short phrases that CLIP prompts such as ``"a photo of a {label}"`` can use. The split is
compositional: each shape is unseen in exactly one colour and each colour in one or two shapes
(5 unseen, 15 seen), so every colour and every shape also occurs in seen labels. Five unseen labels
keep the ZSL split usable with top-5 metrics (k <= C).

Everything is a function of (n_train, n_test, image_size, seed). ``make_generated_dataset`` writes::

    root/manifest.json             the parameters (the cache key)
    root/train.jsonl, test.jsonl   {"image": "train/00000.png", "labels": [...], "objects": [...]}
    root/train/*.png, test/*.png

and reuses them when the manifest matches and every listed image exists. Image ``i`` of each split
contains label ``i mod 20``, so every label occurs in both splits once n >= 20.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ramlico.data.labels import LabelSpace
from ramlico.utils import get_logger

log = get_logger(__name__)

GENERATED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
}
GENERATED_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
GENERATED_UNSEEN: tuple[str, ...] = (
    "blue square",
    "green triangle",
    "red star",
    "yellow circle",
    "yellow cross",
)
GENERATED_SEEN: tuple[str, ...] = tuple(
    sorted(
        f"{c} {s}"
        for c in GENERATED_COLOURS
        for s in GENERATED_SHAPES
        if f"{c} {s}" not in GENERATED_UNSEEN
    )
)
MANIFEST_VERSION = 2
SUPERSAMPLE = 4  # draw at 4x and downsample: smooth edges, exact colours inside objects


def generated_label_space() -> LabelSpace:
    """The fixed 15 seen / 5 unseen split of the generated data set."""
    return LabelSpace(seen=GENERATED_SEEN, unseen=GENERATED_UNSEEN)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a square / triangle / star / cross / hexagon of radius ~r, rotated by angle."""
    if shape == "cross":  # a plus sign: arms of half-width 0.3 r reaching r from the centre
        w = 0.3 * r
        corners = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w),
                   (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]  # fmt: skip
        angles = [math.atan2(y, x) for x, y in corners]
        radii = [math.hypot(x, y) for x, y in corners]
    elif shape == "square":
        angles, radii = [math.pi / 4 + k * math.pi / 2 for k in range(4)], [r] * 4
    elif shape == "triangle":
        angles, radii = [-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)], [r] * 3
    elif shape == "hexagon":
        angles, radii = [k * math.pi / 3 for k in range(6)], [r] * 6
    elif shape == "star":  # 5 outer and 5 inner vertices
        angles = [-math.pi / 2 + k * math.pi / 5 for k in range(10)]
        radii = [r if k % 2 == 0 else 0.45 * r for k in range(10)]
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {sorted(DRAWABLE_SHAPES)}")
    return [
        (cx + rad * math.cos(a + angle), cy + rad * math.sin(a + angle))
        for a, rad in zip(angles, radii, strict=True)
    ]


#: Every shape :func:`draw_shape` can draw: the five label shapes plus the toy world's distractor
#: shapes (``ring``: a hollow circle, ``hexagon``), see :mod:`ramlico.data.scenes`.
DRAWABLE_SHAPES = frozenset(GENERATED_SHAPES + ("ring", "hexagon"))


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    center: tuple[float, float],
    radius: float,
    fill: tuple[int, int, int],
    angle: float = 0.0,
) -> None:
    """Draw one filled shape (a ring: an outline 0.35 ``radius`` thick) in ``draw``'s pixels.

    Args:
        draw: the canvas to draw on (at supersampled resolution).
        shape: one of :data:`DRAWABLE_SHAPES`.
        center, radius: in ``draw``'s pixels.
        fill: RGB colour.
        angle: rotation in radians (ignored by the round shapes).
    """
    cx, cy = center
    r = radius
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(1, round(0.35 * r)))
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill)


def noisy_background(size: int, rng: np.random.Generator, supersample: int = 1) -> Image.Image:
    """A grey ``size`` x ``size`` canvas (level 90-170, +-10 per-pixel noise), upsampled."""
    grey = int(rng.integers(90, 171))
    noise = rng.integers(-10, 11, size=(size, size, 1))
    background = np.clip(grey + noise, 0, 255).astype(np.uint8).repeat(3, axis=2)
    big = size * supersample
    return Image.fromarray(background).resize((big, big), Image.Resampling.NEAREST)


def draw_scene(
    labels: list[str], image_size: int, rng: np.random.Generator
) -> tuple[Image.Image, list[dict]]:
    """Draw one image with one object per label, each in its own quadrant.

    Args:
        labels: 1-4 labels ``"<colour> <shape>"`` (repeats allowed: two objects of one label).
        image_size: output side length in pixels.
        rng: numpy generator; the only source of randomness.

    Returns:
        (image, objects): an RGB ``image_size`` x ``image_size`` PIL image and, per object, a dict
        with ``label``, ``center`` [x, y] and ``radius`` in output pixels.
    """
    if not 1 <= len(labels) <= 4:
        raise ValueError(f"draw_scene takes 1-4 labels (one per quadrant), got {len(labels)}")
    big = image_size * SUPERSAMPLE
    canvas = noisy_background(image_size, rng, SUPERSAMPLE)
    draw = ImageDraw.Draw(canvas)
    quadrants = rng.permutation(4)[: len(labels)]
    half = big / 2
    objects = []
    for label, q in zip(labels, quadrants, strict=True):
        colour, shape = label.split(" ")
        r = half * float(rng.uniform(0.28, 0.42))
        margin = r + 0.04 * half
        cx = (q % 2) * half + float(rng.uniform(margin, half - margin))
        cy = (q // 2) * half + float(rng.uniform(margin, half - margin))
        angle = 0.0 if shape == "circle" else float(rng.uniform(-math.pi / 12, math.pi / 12))
        draw_shape(draw, shape, (cx, cy), r, GENERATED_COLOURS[colour], angle)
        s = SUPERSAMPLE
        objects.append({"label": label, "center": [cx / s, cy / s], "radius": r / s})
    image = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    return image, objects


def generated_split_scenes(
    split: str, n: int, image_size: int = 64, seed: int = 0
) -> Iterator[tuple[Image.Image, dict]]:
    """The images of one split of the generated data set with their label rows, in order.

    Yields ``(image, {"labels": [...], "objects": [...]})``; image ``i`` contains label
    ``i mod 20`` plus 0-2 random labels. A pure function of the arguments.
    """
    labels = list(GENERATED_SEEN + GENERATED_UNSEEN)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    for i in range(n):
        k = int(rng.integers(1, 4))
        scene = [labels[i % len(labels)]] + [labels[j] for j in rng.integers(0, len(labels), k - 1)]
        image, objects = draw_scene(scene, image_size, rng)
        yield image, {"labels": list(dict.fromkeys(scene)), "objects": objects}


def _write_split(root: Path, split: str, n: int, image_size: int, seed: int) -> Path:
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("[0-9][0-9][0-9][0-9][0-9].png"):
        old.unlink()
    lines = []
    for i, (image, row) in enumerate(generated_split_scenes(split, n, image_size, seed)):
        rel = f"{split}/{i:05d}.png"
        image.save(root / rel)
        lines.append(json.dumps({"image": rel, **row}))
    label_file = root / f"{split}.jsonl"
    label_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return label_file


def _cache_is_valid(root: Path, manifest: dict[str, Any]) -> bool:
    path = root / "manifest.json"
    if not path.is_file():
        return False
    try:
        if json.loads(path.read_text(encoding="utf-8")) != manifest:
            return False
    except json.JSONDecodeError:
        return False
    for split in ("train", "test"):
        label_file = root / f"{split}.jsonl"
        if not label_file.is_file():
            return False
        rows = [json.loads(t) for t in label_file.read_text(encoding="utf-8").splitlines() if t]
        if len(rows) != manifest[f"n_{split}"] or not all(
            (root / r["image"]).is_file() for r in rows
        ):
            return False
    return True


def make_generated_dataset(
    root: Path,
    n_train: int = 480,
    n_test: int = 160,
    image_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Write (or reuse) the generated shapes data set under ``root``.

    Args:
        root: cache folder (created if missing).
        n_train, n_test: number of images per split; each >= 20 so every label occurs in both.
        image_size: side length of the square PNGs.
        seed: the data set is a deterministic function of (n_train, n_test, image_size, seed).

    Returns:
        dict with ``root`` (Path), ``train_file`` and ``test_file`` (JSON-lines label files read by
        ``read_label_file``), ``label_space`` (LabelSpace, 15 seen / 5 unseen) and ``generated``
        (bool: False when the cache was reused).

    Raises:
        ValueError: a size is too small to contain every label in both splits.
    """
    n_labels = len(GENERATED_SEEN) + len(GENERATED_UNSEEN)
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n < n_labels:
            raise ValueError(
                f"{name} must be >= {n_labels} so every label occurs in each split, got {n}"
            )
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size}")
    root = Path(root)
    manifest = {
        "version": MANIFEST_VERSION,
        "n_train": n_train,
        "n_test": n_test,
        "image_size": image_size,
        "seed": seed,
        "seen": list(GENERATED_SEEN),
        "unseen": list(GENERATED_UNSEEN),
    }
    generated = not _cache_is_valid(root, manifest)
    if generated:
        log.info("writing generated data set to %s (%d train, %d test)", root, n_train, n_test)
        root.mkdir(parents=True, exist_ok=True)
        (root / "manifest.json").unlink(missing_ok=True)
        _write_split(root, "train", n_train, image_size, seed)
        _write_split(root, "test", n_test, image_size, seed)
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    else:
        log.info("reusing generated data set in %s", root)
    return {
        "root": root,
        "train_file": root / "train.jsonl",
        "test_file": root / "test.jsonl",
        "label_space": generated_label_space(),
        "generated": generated,
    }


#: The 20 single-label classes of the generated set (every colour x shape), sorted.
GENERATED_CLASSES: tuple[str, ...] = tuple(sorted(GENERATED_SEEN + GENERATED_UNSEEN))


OBJECTS_FILE = "objects.jsonl"  # ground-truth geometry of the generated single-label images


def make_generated_classification(
    root: Path, n_per_class: int = 8, image_size: int = 64, seed: int = 0, hard: bool = False
) -> Path:
    """Write (once) an ImageFolder tree of single-label images, one folder per generated class.

    ``hard=False``: one shape per image; ``hard=True``: the shape among distractors and clutter
    (:func:`ramlico.data.scenes.generated_classification_scenes`). Besides ``root/<class>/<i>.png``
    it writes ``root/objects.jsonl``, one ``{"image": "<class>/<i>.png", "label": ..., "objects":
    [{label, center, radius}, ...]}`` row per image (the ground-truth geometry for region
    evaluation). Returns ``root``. The cache is reused when ``root/manifest.json`` holds the same
    parameters.
    """
    from ramlico.data.scenes import generated_classification_scenes  # scenes builds on this module

    root = Path(root)
    manifest = {"n_per_class": n_per_class, "image_size": image_size, "seed": seed, "version": 2}
    if hard:
        manifest["hard"] = True
    mpath = root / "manifest.json"
    if mpath.is_file() and json.loads(mpath.read_text()) == manifest:
        return root
    for stale in root.glob("*/[0-9][0-9][0-9][0-9].png"):  # a smaller set must not keep them
        stale.unlink()
    rows = []
    scenes = generated_classification_scenes(n_per_class, image_size, seed, hard)
    for name, i, image, objects in scenes:
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        rel = f"{folder.name}/{i:04d}.png"
        image.save(root / rel)
        rows.append(json.dumps({"image": rel, "label": name, "objects": objects}))
    (root / OBJECTS_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
    mpath.write_text(json.dumps(manifest))
    log.info("wrote generated classification set (%d classes) to %s", len(GENERATED_CLASSES), root)
    return root
