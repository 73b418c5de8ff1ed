"""Captions of toy-world scenes, and the facts that make a caption true of a scene.

A scene (objects with colour, shape and position, optional clutter) holds a set of atomic
**facts**::

    has <colour> <shape>      colour <colour>      shape <shape>      objects <k>
    count <colour> <shape> <k>   (k >= 2)          at <place> <colour> <shape>      clutter

with ``place`` one of ``top left``, ``top right``, ``bottom left``, ``bottom right``, ``left``,
``right``, ``top``, ``bottom``. A caption states a few of them ("two red circles and a blue star"
states ``has red circle``, ``count red circle 2``, ``has blue star``, ``objects 3``) and is true of
every scene whose facts include the caption's. The contrastive loss of the toy CLIP uses this to
count every true caption in a batch as a positive, not only the image's own
(:func:`truth_matrix`).

Caption families (weights in :data:`FAMILY_WEIGHTS`): a name ("a photo of a red circle."), the
full list of objects, the number of objects, a position ("a red circle in the top left."), an
attribute phrase ("a red object.", "a shape with five points.", "a red shape with four equal
sides."), and a descriptor sentence in LaZSL's format ("red star, which has five pointed tips.").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from ramlico.data.scenes import ALL_COLOURS, ALL_SHAPES, SceneObject
from ramlico.toy.vocabulary import COLOUR_PHRASES, COUNT_WORDS, SHAPE_FEATURES, SHAPE_NOUNS, plural
from ramlico.zeroshot.descriptors import modify_descriptor

__all__ = [
    "FACTS",
    "FAMILY_WEIGHTS",
    "NAME_TEMPLATES",
    "caption_vocabulary",
    "fact_vector",
    "sample_caption",
    "scene_facts",
    "truth_matrix",
]

PLACES = ("top left", "top right", "bottom left", "bottom right", "left", "right", "top", "bottom")
MAX_OBJECTS = 4
NAME_TEMPLATES = (
    "a photo of a {}.",
    "a {}.",
    "{}",
    "an image of a {}.",
    "a picture of a {}.",
    "a photo of the {}.",
    "a {} on a grey background.",
)
LIST_PREFIXES = ("", "a photo of ", "an image of ", "a picture of ")
FAMILY_WEIGHTS: dict[str, float] = {
    "name": 3.0,
    "list": 3.0,
    "attribute": 2.0,
    "descriptor": 1.5,
    "position": 1.5,
    "count": 1.0,
}
_LABELS = [f"{c} {s}" for c in ALL_COLOURS for s in ALL_SHAPES]
FACTS: tuple[str, ...] = tuple(
    [f"has {x}" for x in _LABELS]
    + [f"colour {c}" for c in ALL_COLOURS]
    + [f"shape {s}" for s in ALL_SHAPES]
    + [f"objects {k}" for k in range(1, MAX_OBJECTS + 1)]
    + [f"count {x} {k}" for x in _LABELS for k in range(2, MAX_OBJECTS + 1)]
    + [f"at {p} {x}" for p in PLACES for x in _LABELS]
    + ["clutter"]
)
_FACT_INDEX = {f: i for i, f in enumerate(FACTS)}


def _places(obj: SceneObject, image_size: int) -> list[str]:
    """Places an object is clearly in (its centre >= 10% of the image from the middle lines)."""
    cx, cy = (v / image_size - 0.5 for v in obj.center)
    horizontal = "left" if cx < -0.1 else "right" if cx > 0.1 else None
    vertical = "top" if cy < -0.1 else "bottom" if cy > 0.1 else None
    places = [p for p in (horizontal, vertical) if p]
    if horizontal and vertical:
        places.append(f"{vertical} {horizontal}")
    return places


def scene_facts(objects: Sequence[SceneObject], image_size: int, n_lines: int = 0) -> set[str]:
    """Every fact (see module docstring) that holds in a scene."""
    if len(objects) > MAX_OBJECTS:
        raise ValueError(f"scenes hold at most {MAX_OBJECTS} objects, got {len(objects)}")
    facts = {f"objects {len(objects)}"} if objects else set()
    for label, k in Counter(o.label for o in objects).items():
        facts.add(f"has {label}")
        if k >= 2:
            facts.add(f"count {label} {k}")
    for o in objects:
        facts |= {f"colour {o.colour}", f"shape {o.shape}"}
        facts |= {f"at {p} {o.label}" for p in _places(o, image_size)}
    if n_lines > 0:
        facts.add("clutter")
    return facts


def fact_vector(facts: set[str]) -> torch.Tensor:
    """``(F,)`` float multi-hot over :data:`FACTS`."""
    out = torch.zeros(len(FACTS))
    out[[_FACT_INDEX[f] for f in facts]] = 1.0
    return out


def truth_matrix(scene: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` bool: caption ``j`` is true of scene ``i`` (its facts are a subset of scene's).

    Args:
        scene: ``(B, F)`` multi-hot scene facts; caption: ``(B, F)`` multi-hot caption facts.
    """
    return (caption @ (1.0 - scene).t()).t() == 0


T = TypeVar("T")


def _pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def _name(obj: SceneObject, k: int = 1) -> str:
    if k == 1:
        return f"{obj.colour} {obj.shape}"
    return f"{COUNT_WORDS[k]} {obj.colour} {plural(obj.shape)}"


def _object_list(objects: Sequence[SceneObject], rng: np.random.Generator) -> tuple[str, set[str]]:
    groups = Counter(o.label for o in objects)
    first = {o.label: o for o in objects}
    order = list(groups)
    rng.shuffle(order)
    parts = [("a " if groups[x] == 1 else "") + _name(first[x], groups[x]) for x in order]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    facts = {f"objects {len(objects)}"} | {f"has {x}" for x in groups}
    facts |= {f"count {x} {k}" for x, k in groups.items() if k >= 2}
    return _pick(rng, LIST_PREFIXES) + text + ".", facts


def _attribute(obj: SceneObject, rng: np.random.Generator) -> tuple[str, set[str]]:
    colour = _pick(rng, COLOUR_PHRASES[obj.colour])
    kind = int(rng.integers(5))
    if kind == 0:
        text = _pick(rng, (f"a {colour} object.", f"something {colour}.", f"a {colour} shape."))
        return text, {f"colour {obj.colour}"}
    if kind == 1:
        return f"a shape with {_pick(rng, SHAPE_FEATURES[obj.shape])}.", {f"shape {obj.shape}"}
    if kind == 2:
        return _pick(rng, SHAPE_NOUNS[obj.shape]) + ".", {f"shape {obj.shape}"}
    if kind == 3:
        text = f"a {colour} shape with {_pick(rng, SHAPE_FEATURES[obj.shape])}."
    else:
        noun = _pick(rng, SHAPE_NOUNS[obj.shape])
        text = f"a {colour} {noun.removeprefix('a ')}."
    return text, {f"has {obj.label}"}


def _descriptor(obj: SceneObject, rng: np.random.Generator) -> str:
    pool = [f"a {c} colour" for c in COLOUR_PHRASES[obj.colour]]
    pool += [*SHAPE_NOUNS[obj.shape], *SHAPE_FEATURES[obj.shape]]
    return f"{obj.label}, {modify_descriptor(_pick(rng, pool))}."


def sample_caption(
    objects: Sequence[SceneObject], image_size: int, rng: np.random.Generator, n_lines: int = 0
) -> tuple[str, set[str]]:
    """One random caption of a scene and the facts it states (a subset of the scene's facts).

    Captions about one object pick a label object 80% of the time when the scene has one.
    """
    if not objects:
        raise ValueError("a scene needs at least one object to be captioned")
    families = list(FAMILY_WEIGHTS)
    weights = np.array([FAMILY_WEIGHTS[f] for f in families])
    family = families[int(rng.choice(len(families), p=weights / weights.sum()))]
    labelled = [o for o in objects if o.is_label]
    obj = _pick(rng, labelled if labelled and rng.random() < 0.8 else list(objects))
    if family == "name":
        text, facts = _pick(rng, NAME_TEMPLATES).format(obj.label), {f"has {obj.label}"}
    elif family == "list":
        text, facts = _object_list(objects, rng)
    elif family == "count":
        k = len(objects)
        noun = _pick(rng, ("shape", "object"))
        text = f"a single {noun}." if k == 1 else f"{COUNT_WORDS[k]} {noun}s."
        facts = {f"objects {k}"}
    elif family == "position" and _places(obj, image_size):
        place = _pick(rng, _places(obj, image_size))
        preposition = "in the" if " " in place else "on the" if place in PLACES[4:6] else "at the"
        text, facts = f"a {obj.label} {preposition} {place}.", {f"at {place} {obj.label}"}
    elif family == "descriptor":
        text, facts = _descriptor(obj, rng), {f"has {obj.label}"}
    else:  # attribute (or a position caption of an object in the middle)
        text, facts = _attribute(obj, rng)
    if n_lines > 0 and rng.random() < 0.2:
        text, facts = text.rstrip(".") + " among thin lines.", facts | {"clutter"}
    return text, facts


def caption_vocabulary() -> list[str]:
    """Every word and phrase a caption can contain (to build the toy CLIP's token table)."""
    words = [t.format("") for t in NAME_TEMPLATES] + list(LIST_PREFIXES)
    words += [*COUNT_WORDS, "a single", "shape shapes object objects", "and ,", "among thin lines."]
    words += ["in the on the at the", *PLACES, "something", "with", "which is which has"]
    words += [c for phrases in COLOUR_PHRASES.values() for c in phrases] + ["colour"]
    words += [*ALL_SHAPES, *(plural(s) for s in ALL_SHAPES)]
    words += [p for d in (SHAPE_NOUNS, SHAPE_FEATURES) for ps in d.values() for p in ps]
    return words
