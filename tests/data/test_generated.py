"""ramlico.data.generated: deterministic, cached shapes data set with a compositional 15/5 split."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ramlico.data.generated import (
    GENERATED_COLOURS,
    GENERATED_SHAPES,
    draw_scene,
    generated_label_space,
    make_generated_dataset,
)
from ramlico.data.records import read_label_file

SMALL = {"n_train": 24, "n_test": 22, "image_size": 32}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_label_space_is_compositional():
    space = generated_label_space()
    assert (len(space.seen), len(space.unseen)) == (15, 5)
    assert len(space.gzsl) == len(GENERATED_COLOURS) * len(GENERATED_SHAPES) == 20
    unseen = [label.split(" ") for label in space.unseen]
    # every shape is unseen in exactly one colour, every colour in at least one shape
    assert sorted(s for _, s in unseen) == sorted(GENERATED_SHAPES)
    assert {c for c, _ in unseen} == set(GENERATED_COLOURS)
    # ... and every colour and shape also occurs in a seen label
    seen = [label.split(" ") for label in space.seen]
    assert {c for c, _ in seen} == set(GENERATED_COLOURS)
    assert {s for _, s in seen} == set(GENERATED_SHAPES)


def test_every_label_in_both_splits(tmp_path: Path):
    info = make_generated_dataset(tmp_path, **SMALL)
    space = info["label_space"]
    for split, n in (("train", 24), ("test", 22)):
        records = read_label_file(info[f"{split}_file"])
        assert len(records) == n
        assert {x for r in records for x in r.labels} == set(space.gzsl)
        assert all(1 <= len(r.labels) <= 3 for r in records)
        assert all(r.image.is_file() for r in records)
    with Image.open(tmp_path / "train" / "00000.png") as im:
        assert (im.mode, im.size) == ("RGB", (32, 32))


def test_objects_have_their_label_colour(tmp_path: Path):
    info = make_generated_dataset(tmp_path, **SMALL)
    rows = [json.loads(t) for t in info["test_file"].read_text().splitlines()]
    for row in rows:
        pixels = np.asarray(Image.open(tmp_path / row["image"]))
        for obj in row["objects"]:
            x, y = (int(v) for v in obj["center"])
            colour = GENERATED_COLOURS[obj["label"].split(" ")[0]]
            # the centre lies well inside the shape (radius >= 0.28 of a quadrant): exact colour
            assert tuple(pixels[y, x]) == colour, (row["image"], obj)


def test_deterministic_in_seed(tmp_path: Path):
    make_generated_dataset(tmp_path / "a", **SMALL, seed=3)
    make_generated_dataset(tmp_path / "b", **SMALL, seed=3)
    make_generated_dataset(tmp_path / "c", **SMALL, seed=4)
    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert a == b
    assert a.keys() == c.keys() and a["train/00001.png"] != c["train/00001.png"]


def test_cache_is_reused_then_refreshed(tmp_path: Path):
    first = make_generated_dataset(tmp_path, **SMALL)
    assert first["generated"] is True
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for p in files:  # back-date, so a rewrite is visible even with coarse file-system clocks
        os.utime(p, ns=(10**18, 10**18))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    second = make_generated_dataset(tmp_path, **SMALL)
    assert second["generated"] is False
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == mtimes
    # other parameters: regenerated, and the images beyond the new size are gone
    third = make_generated_dataset(tmp_path, **{**SMALL, "n_test": 20})
    assert third["generated"] is True
    assert len(list((tmp_path / "test").glob("*.png"))) == 20
    # a missing image invalidates the cache
    (tmp_path / "train" / "00003.png").unlink()
    assert make_generated_dataset(tmp_path, **{**SMALL, "n_test": 20})["generated"] is True
    assert (tmp_path / "train" / "00003.png").is_file()


def test_too_small_sizes_raise(tmp_path: Path):
    with pytest.raises(ValueError, match="n_test must be >= 20 so every label occurs"):
        make_generated_dataset(tmp_path, n_train=20, n_test=19)
    with pytest.raises(ValueError, match="image_size must be >= 16"):
        make_generated_dataset(tmp_path, n_train=20, n_test=20, image_size=8)


def test_draw_scene_objects_in_distinct_quadrants():
    rng = np.random.default_rng(0)
    image, objects = draw_scene(["red circle", "red circle", "blue star"], 64, rng)
    assert image.size == (64, 64) and len(objects) == 3
    quadrants = {(int(o["center"][0] // 32), int(o["center"][1] // 32)) for o in objects}
    assert len(quadrants) == 3
    with pytest.raises(ValueError, match="1-4 labels"):
        draw_scene([], 64, rng)
