"""ramlico.data.scenes: distractors are no label, geometry matches the pixels, sets are seeded."""

from __future__ import annotations

import json

import numpy as np

from ramlico.data.generated import (
    GENERATED_COLOURS,
    GENERATED_SHAPES,
    make_generated_classification,
)
from ramlico.data.scenes import (
    ALL_COLOURS,
    hard_single_label_scene,
    random_distractor,
    render_scene,
)


def test_distractors_are_never_labels():
    rng = np.random.default_rng(0)
    for _ in range(200):
        colour, shape = random_distractor(rng, "red")
        assert not (colour in GENERATED_COLOURS and shape in GENERATED_SHAPES)


def test_hard_scene_has_one_label_object_drawn_in_its_colour():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        objects, n_lines = hard_single_label_scene("green star", 64, rng)
        assert [o.is_label for o in objects] == [True] + [False] * (len(objects) - 1)
        assert 3 <= len(objects) <= 4 and 3 <= n_lines <= 6
        image = np.asarray(render_scene(objects, 64, rng, n_lines))
        for o in objects:  # objects are drawn over the clutter: centre pixel has its colour
            x, y = (int(v) for v in o.center)
            if o.shape != "ring":  # a ring's centre is a hole
                assert tuple(image[y, x]) == ALL_COLOURS[o.colour], (seed, o)


def test_hard_classification_set_records_geometry_and_is_seeded(tmp_path):
    a = make_generated_classification(tmp_path / "a", n_per_class=2, seed=1, hard=True)
    b = make_generated_classification(tmp_path / "b", n_per_class=2, seed=1, hard=True)
    rows = [json.loads(t) for t in (a / "objects.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and all(r["objects"][0]["label"] == r["label"] for r in rows)
    assert all(o.get("distractor") for r in rows for o in r["objects"][1:])
    assert (a / rows[0]["image"]).read_bytes() == (b / rows[0]["image"]).read_bytes()
