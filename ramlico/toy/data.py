"""The toy CLIP's pre-training stream: an endless, seeded sequence of captioned scenes.

Sample ``i`` of seed ``s`` is a pure function of ``(s, i)`` (numpy generator ``[s, i]``), so a
batch is the same whatever produced the batches before it: training is deterministic for a seed
and a killed run resumes exactly at its step. Scenes mix three layouts (:func:`pretraining_scene`)
over all 20 labels (the labels RAM treats as unseen included, as CLIP's pre-training sees every
concept) and the distractors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ramlico.data.generated import GENERATED_CLASSES
from ramlico.data.scenes import (
    SceneObject,
    free_object,
    hard_single_label_scene,
    quadrant_objects,
    random_distractor,
    render_scene,
)
from ramlico.toy.captions import fact_vector, sample_caption, scene_facts

__all__ = ["CaptionedBatch", "make_batch", "pretraining_scene"]

LAYOUT_WEIGHTS = {"quadrants": 0.5, "single": 0.25, "hard": 0.25}


def _spec(rng: np.random.Generator, p_label: float = 0.8) -> tuple[str, str]:
    if rng.random() < p_label:
        colour, shape = GENERATED_CLASSES[int(rng.integers(len(GENERATED_CLASSES)))].split(" ")
        return colour, shape
    return random_distractor(rng)


def pretraining_scene(
    rng: np.random.Generator, image_size: int = 64
) -> tuple[list[SceneObject], int]:
    """One pre-training scene: ``(objects, n_clutter_lines)``.

    Layouts: ``quadrants`` (50%: 1-4 objects, one per quadrant, each a label w.p. 0.8, lines
    w.p. 0.3), ``single`` (25%: one object anywhere, radius 12-45% of the image, label w.p. 0.8)
    and ``hard`` (25%: a label object among 2-3 distractors and 3-6 clutter lines, as in the hard
    single-label set).
    """
    layouts = list(LAYOUT_WEIGHTS)
    p = np.array([LAYOUT_WEIGHTS[k] for k in layouts])
    layout = layouts[int(rng.choice(len(layouts), p=p))]
    if layout == "hard":
        label = GENERATED_CLASSES[int(rng.integers(len(GENERATED_CLASSES)))]
        return hard_single_label_scene(label, image_size, rng)
    n_lines = int(rng.integers(1, 7)) if rng.random() < 0.3 else 0
    if layout == "single":
        return [free_object(*_spec(rng), image_size, rng, radius=(0.12, 0.45))], n_lines
    k = int(rng.integers(1, 5))
    return quadrant_objects([_spec(rng) for _ in range(k)], image_size, rng), n_lines


@dataclass
class CaptionedBatch:
    """``images (B, 3, S, S)`` normalised, ``texts`` (B captions), ``scene_facts`` and
    ``caption_facts`` ``(B, F)`` multi-hot over :data:`ramlico.toy.captions.FACTS`."""

    images: torch.Tensor
    texts: list[str]
    scene_facts: torch.Tensor
    caption_facts: torch.Tensor


def make_batch(
    seed: int,
    indices: Sequence[int],
    transform: Callable[[Image.Image], torch.Tensor],
    image_size: int = 64,
) -> CaptionedBatch:
    """Render and caption the samples ``indices`` of the stream of ``seed``."""
    images, texts, scene, caption = [], [], [], []
    for i in indices:
        rng = np.random.default_rng([seed, int(i)])
        objects, n_lines = pretraining_scene(rng, image_size)
        image = render_scene(objects, image_size, rng, n_lines)
        text, facts = sample_caption(objects, image_size, rng, n_lines)
        images.append(transform(image))
        texts.append(text)
        scene.append(fact_vector(scene_facts(objects, image_size, n_lines)))
        caption.append(fact_vector(facts))
    return CaptionedBatch(torch.stack(images), texts, torch.stack(scene), torch.stack(caption))
