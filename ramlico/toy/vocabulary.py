"""Words of the toy world: colour and shape phrases shared by the captions and the descriptors.

The same phrases describe a colour or a shape in the pre-training captions of the toy CLIP
(:mod:`ramlico.toy.captions`) and in the toy descriptor file (:func:`toy_descriptors`, the
DCLIP/CuPL ``{class: [descriptor, ...]}`` format read by LaZSL), so descriptor sentences such as
``"red star, which has five pointed tips"`` mean something to the toy CLIP.
"""

from __future__ import annotations

from ramlico.data.generated import GENERATED_COLOURS, GENERATED_SHAPES
from ramlico.data.scenes import ALL_COLOURS, ALL_SHAPES

__all__ = [
    "COLOUR_PHRASES",
    "COUNT_WORDS",
    "SHAPE_FEATURES",
    "SHAPE_NOUNS",
    "plural",
    "toy_descriptors",
]

#: Adjectives for each colour (the first is the colour's name).
COLOUR_PHRASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "bright red"),
    "green": ("green", "grass green"),
    "blue": ("blue", "deep blue"),
    "yellow": ("yellow", "bright yellow"),
    "purple": ("purple", "violet"),
    "white": ("white", "snow white"),
    "black": ("black", "dark black"),
}
#: Noun phrases naming a shape by its look ("a round shape").
SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("a round shape", "a smooth curved outline", "a disc"),
    "square": ("a boxy shape", "a shape like a tile"),
    "triangle": ("a pointed shape", "a shape like a slice"),
    "star": ("a spiky outline", "a shape like a starfish"),
    "cross": ("a plus sign shape", "a shape like a plus sign"),
    "ring": ("a hollow round outline", "a shape like a donut"),
    "hexagon": ("a shape like a honeycomb cell", "a six-sided shape"),
}
#: Features a shape has ("a shape with five points").
SHAPE_FEATURES: dict[str, tuple[str, ...]] = {
    "circle": ("no corners", "one curved edge"),
    "square": ("four equal sides", "four right-angled corners"),
    "triangle": ("three straight sides", "three pointed corners"),
    "star": ("five points", "five pointed tips"),
    "cross": ("two crossing bars", "four arms of equal length"),
    "ring": ("a hole in the middle", "a thin round rim"),
    "hexagon": ("six sides", "six corners"),
}
COUNT_WORDS = ("zero", "one", "two", "three", "four")

assert set(COLOUR_PHRASES) == set(ALL_COLOURS)
assert set(SHAPE_NOUNS) == set(SHAPE_FEATURES) == set(ALL_SHAPES)


def plural(shape: str) -> str:
    """``"circle"`` -> ``"circles"``, ``"cross"`` -> ``"crosses"``."""
    return shape + ("es" if shape.endswith("s") else "s")


def toy_descriptors() -> dict[str, list[str]]:
    """The toy descriptor file: 5 descriptors per label (colour, shape look, shape features).

    Per class ``"<colour> <shape>"``: ``"a <colour adjective> colour"`` twice (both adjectives),
    the shape's first noun phrase and both of its features, in label order (colour-major, as
    :data:`ramlico.data.generated.GENERATED_CLASSES` sorts them).
    """
    out: dict[str, list[str]] = {}
    for colour in GENERATED_COLOURS:
        for shape in GENERATED_SHAPES:
            colours = [f"a {c} colour" for c in COLOUR_PHRASES[colour]]
            out[f"{colour} {shape}"] = [*colours, SHAPE_NOUNS[shape][0], *SHAPE_FEATURES[shape]]
    return dict(sorted(out.items()))
