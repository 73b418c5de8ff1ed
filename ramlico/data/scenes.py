"""Scenes of the toy world: label objects, distractor objects and clutter, with their geometry.

The 20 labels of the generated data are ``"<colour> <shape>"`` with 4 label colours and 5 label
shapes (:mod:`ramlico.data.generated`). The toy world adds what real photos have around the
labelled object: **distractors**, objects that share a colour or a shape with some label but are
no label (a colour from :data:`DISTRACTOR_COLOURS` or a shape from :data:`DISTRACTOR_SHAPES`, e.g.
``"purple star"``, ``"red ring"``), and **clutter**, thin line segments in any colour drawn under
the objects. Every object keeps its geometry (centre and radius in output pixels), so the region
evidence of a method can be checked against ground truth (:mod:`ramlico.metrics.regions`).

Layouts (all pure functions of a numpy generator):

* :func:`quadrant_objects`: one object per image quadrant, radius 0.28-0.42 of a quadrant side (the
  geometry of :func:`ramlico.data.generated.draw_scene`);
* :func:`free_object`: one object anywhere, of a chosen radius range (scale variety);
* :func:`hard_single_label_scene`: one label object plus 2-3 distractors in the other quadrants and
  line clutter: the hard single-label set, where a global image embedding mixes the distractors'
  colours and shapes into its guess and local evidence has to find the one labelled object.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ramlico.data.generated import (
    GENERATED_CLASSES,
    GENERATED_COLOURS,
    GENERATED_SHAPES,
    SUPERSAMPLE,
    draw_scene,
    draw_shape,
    noisy_background,
)

__all__ = [
    "ALL_COLOURS",
    "ALL_SHAPES",
    "DISTRACTOR_COLOURS",
    "DISTRACTOR_SHAPES",
    "SceneObject",
    "free_object",
    "generated_classification_scenes",
    "hard_single_label_scene",
    "quadrant_objects",
    "random_distractor",
    "render_scene",
]

#: Colours that no label has (distractors only).
DISTRACTOR_COLOURS: dict[str, tuple[int, int, int]] = {
    "purple": (140, 50, 190),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
#: Shapes that no label has (distractors only): a hollow circle and a hexagon.
DISTRACTOR_SHAPES: tuple[str, ...] = ("ring", "hexagon")
ALL_COLOURS: dict[str, tuple[int, int, int]] = {**GENERATED_COLOURS, **DISTRACTOR_COLOURS}
ALL_SHAPES: tuple[str, ...] = GENERATED_SHAPES + DISTRACTOR_SHAPES
QUADRANT_RADIUS = (0.28, 0.42)  # object radius as a fraction of a quadrant side (draw_scene's)


@dataclass(frozen=True)
class SceneObject:
    """One object: ``colour``, ``shape``, ``center`` ``(x, y)`` and ``radius`` in output pixels."""

    colour: str
    shape: str
    center: tuple[float, float]
    radius: float
    angle: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def is_label(self) -> bool:
        """True for one of the 20 label objects, False for a distractor."""
        return self.colour in GENERATED_COLOURS and self.shape in GENERATED_SHAPES

    def to_dict(self) -> dict:
        """The JSON form of the generated data sets: ``label``, ``center``, ``radius``."""
        out = {"label": self.label, "center": [*self.center], "radius": self.radius}
        if not self.is_label:
            out["distractor"] = True
        return out


def random_distractor(rng: np.random.Generator, colour: str | None = None) -> tuple[str, str]:
    """A ``(colour, shape)`` that is no label: a distractor colour or a distractor shape.

    With ``colour`` given (a label colour) the result keeps it and takes a distractor shape half
    of the time (``"red ring"``); otherwise a distractor colour with any shape (``"purple star"``).
    """
    if colour is not None and rng.random() < 0.5:
        return colour, DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))]
    colours = list(DISTRACTOR_COLOURS)
    return colours[int(rng.integers(len(colours)))], ALL_SHAPES[int(rng.integers(len(ALL_SHAPES)))]


def _angle(shape: str, rng: np.random.Generator) -> float:
    round_shape = shape in ("circle", "ring")
    return 0.0 if round_shape else float(rng.uniform(-math.pi / 12, math.pi / 12))


def quadrant_objects(
    specs: Sequence[tuple[str, str]],
    image_size: int,
    rng: np.random.Generator,
    radius: tuple[float, float] = QUADRANT_RADIUS,
) -> list[SceneObject]:
    """Place 1-4 ``(colour, shape)`` objects, one per randomly chosen quadrant.

    Args:
        specs: the objects' colours and shapes.
        image_size: output side in pixels.
        rng: the only source of randomness.
        radius: radius range as a fraction of a quadrant side (``image_size / 2``).
    """
    if not 1 <= len(specs) <= 4:
        raise ValueError(f"quadrant_objects takes 1-4 objects (one per quadrant), got {len(specs)}")
    half = image_size / 2
    objects = []
    for (colour, shape), q in zip(specs, rng.permutation(4)[: len(specs)], strict=True):
        r = half * float(rng.uniform(*radius))
        margin = r + 0.04 * half
        cx = (q % 2) * half + float(rng.uniform(margin, half - margin))
        cy = (q // 2) * half + float(rng.uniform(margin, half - margin))
        objects.append(SceneObject(colour, shape, (cx, cy), r, _angle(shape, rng)))
    return objects


def free_object(
    colour: str,
    shape: str,
    image_size: int,
    rng: np.random.Generator,
    radius: tuple[float, float] = (0.15, 0.45),
) -> SceneObject:
    """One object anywhere in the image (fully inside), radius a fraction of ``image_size``."""
    r = image_size * float(rng.uniform(*radius))
    cx, cy = (float(v) for v in rng.uniform(r + 1, image_size - r - 1, size=2))
    return SceneObject(colour, shape, (cx, cy), r, _angle(shape, rng))


def hard_single_label_scene(
    label: str,
    image_size: int,
    rng: np.random.Generator,
    n_distractors: tuple[int, int] = (2, 3),
    n_clutter: tuple[int, int] = (3, 6),
) -> tuple[list[SceneObject], int]:
    """One label object, ``n_distractors`` distractors (other quadrants) and clutter lines.

    Distractors are drawn with :func:`random_distractor` around the label's colour, so a scene of
    ``"red circle"`` may hold a red ring and a purple star: every colour and shape of the label
    classes can occur, but exactly one object is a label.

    Returns:
        ``(objects, n_lines)``: the label object first, then the distractors; the clutter count.
    """
    colour, shape = label.split(" ")
    k = int(rng.integers(n_distractors[0], n_distractors[1] + 1))
    specs = [(colour, shape)] + [random_distractor(rng, colour) for _ in range(k)]
    objects = quadrant_objects(specs, image_size, rng)
    return objects, int(rng.integers(n_clutter[0], n_clutter[1] + 1))


def render_scene(
    objects: Sequence[SceneObject], image_size: int, rng: np.random.Generator, n_lines: int = 0
) -> Image.Image:
    """Draw a noisy grey background, ``n_lines`` clutter lines, then the objects.

    Lines (1 output pixel wide, any colour of :data:`ALL_COLOURS`) go under the objects, so each
    object is intact. Drawn at 4x and downsampled (smooth edges, exact colours inside objects).
    """
    s = SUPERSAMPLE
    canvas = noisy_background(image_size, rng, s)
    draw = ImageDraw.Draw(canvas)
    colours = list(ALL_COLOURS.values())
    for _ in range(n_lines):
        x0, y0, x1, y1 = (float(v) * s for v in rng.uniform(0, image_size, size=4))
        colour = colours[int(rng.integers(len(colours)))]
        draw.line((x0, y0, x1, y1), fill=colour, width=s)
    for obj in objects:
        fill = ALL_COLOURS[obj.colour]
        cx, cy = obj.center
        draw_shape(draw, obj.shape, (cx * s, cy * s), obj.radius * s, fill, obj.angle)
    return canvas.resize((image_size, image_size), Image.Resampling.BOX)


def generated_classification_scenes(
    n_per_class: int = 8, image_size: int = 64, seed: int = 0, hard: bool = False
) -> Iterator[tuple[str, int, Image.Image, list[dict]]]:
    """The generated single-label images, class by class: ``(class, i, image, objects)``.

    ``hard=False``: one shape per image (:func:`ramlico.data.generated.draw_scene`).
    ``hard=True``: the shape among 2-3 distractors and line clutter
    (:func:`hard_single_label_scene`); ``objects[0]`` is the labelled object. A pure function of
    the arguments.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    for name in GENERATED_CLASSES:
        for i in range(n_per_class):
            if hard:
                shapes, n_lines = hard_single_label_scene(name, image_size, rng)
                image = render_scene(shapes, image_size, rng, n_lines)
                yield name, i, image, [o.to_dict() for o in shapes]
            else:
                image, objects = draw_scene([name], image_size, rng)
                yield name, i, image, objects
