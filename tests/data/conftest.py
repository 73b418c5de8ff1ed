"""Small on-disk fixtures for the data tests: tiny PNGs, COCO-style and NUS-WIDE-style folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image


def write_png(path: Path, colour: tuple[int, int, int] = (200, 30, 30), size: int = 12) -> Path:
    """A uniform RGB PNG of side ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


# ---- COCO ---------------------------------------------------------------------------------------

COCO_CATEGORIES = [
    {"id": 1, "name": "person"},  # seen
    {"id": 17, "name": "dog"},  # unseen
    {"id": 3, "name": "car"},  # seen
    {"id": 67, "name": "dining table"},  # multi-word: excluded by protocol
    {"id": 44, "name": "cup"},  # unseen
]


def make_coco_instances(file_names: list[str], annotations: list[tuple[int, int]]) -> dict:
    """An instances dict: image i has id 100 + i; annotations are (image index, category id)."""
    return {
        "images": [{"id": 100 + i, "file_name": f} for i, f in enumerate(file_names)],
        "annotations": [
            {"id": k, "image_id": 100 + i, "category_id": c} for k, (i, c) in enumerate(annotations)
        ],
        "categories": COCO_CATEGORIES,
    }


@pytest.fixture
def coco_instances():
    """``make_coco_instances`` (a fixture so test modules need not import conftest)."""
    return make_coco_instances


@pytest.fixture
def png():
    """``write_png(path, colour=(200, 30, 30), size=12)``: write a uniform RGB PNG."""
    return write_png


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    """root/annotations/instances_{train,val}2014.json with images in root/train2014, root/val2014.

    train: t0 person x2 + dog; t1 car; t2 dining table only (no vocabulary label).
    val:   v0 person + dog + dining table; v1 car + car; v2 cup; v3 no annotation.
    """
    root = tmp_path / "coco"
    train = [f"COCO_train2014_{i:012d}.jpg" for i in range(3)]
    val = [f"COCO_val2014_{i:012d}.jpg" for i in range(4)]
    for name in train:
        write_png(root / "train2014" / name)
    for name in val:
        write_png(root / "val2014" / name)
    ann = root / "annotations"
    ann.mkdir(parents=True)
    train_ann = [(0, 1), (0, 1), (0, 17), (1, 3), (2, 67)]
    val_ann = [(0, 1), (0, 17), (0, 67), (1, 3), (1, 3), (2, 44)]
    (ann / "instances_train2014.json").write_text(json.dumps(make_coco_instances(train, train_ann)))
    (ann / "instances_val2014.json").write_text(json.dumps(make_coco_instances(val, val_ann)))
    return root


# ---- NUS-WIDE -----------------------------------------------------------------------------------

NUS_TAGS = ["sky", "bravo", "beach", "eos", "nsw", "canon"]  # 2 of the 6 tags are concepts
NUS_CONCEPTS = ["beach", "sky", "tattoo"]  # "tattoo" is not a tag, as on the real data
NUS_IMAGES = ["actor\\0001_11.jpg", "actor\\0002_12.jpg", "beach\\0001_21.jpg", "sky\\0001_31.jpg",
              "sky\\0002_32.jpg"]  # fmt: skip
NUS_TRAIN = [0, 2, 4]
NUS_TEST = [1, 3]
# AllTags1k rows (columns = NUS_TAGS): image 0 has the *tag* "sky" but no sky ground truth.
NUS_ALLTAGS = [
    [1, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 0, 1],
    [0, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 0, 0],
]
NUS_TRUTH = {"beach": [0, 0, 1, 0, 0], "sky": [0, 0, 0, 1, 1], "tattoo": [0, 0, 0, 0, 1]}


def write_nus(root: Path) -> Path:
    """A 5-image NUS-WIDE folder with the official layout (ConceptsList/, NUS_WID_Tags/, ...)."""
    (root / "ConceptsList").mkdir(parents=True)
    (root / "ConceptsList" / "Concepts81.txt").write_text("\n".join(NUS_CONCEPTS) + "\n")
    (root / "NUS_WID_Tags").mkdir()
    (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("\r\n".join(NUS_TAGS) + "\r\n")
    rows = ["\t".join(str(v) for v in row) + "\t" for row in NUS_ALLTAGS]
    (root / "NUS_WID_Tags" / "AllTags1k.txt").write_text("\n".join(rows) + "\n")
    (root / "ImageList").mkdir()
    full = [f"C:\\ImageData\\Flickr\\{name}" for name in NUS_IMAGES]
    (root / "ImageList" / "Imagelist.txt").write_text("\n".join(full) + "\n")
    for split, idx in (("Train", NUS_TRAIN), ("Test", NUS_TEST)):
        lines = "\n".join(NUS_IMAGES[i] for i in idx) + "\n"
        (root / "ImageList" / f"{split}Imagelist.txt").write_text(lines)
    truth = root / "Groundtruth" / "AllLabels"
    truth.mkdir(parents=True)
    for concept, values in NUS_TRUTH.items():
        (truth / f"Labels_{concept}.txt").write_text("\n".join(map(str, values)) + "\n")
    for name in NUS_IMAGES:
        write_png(root / "Flickr" / name.replace("\\", "/"))
    return root


@pytest.fixture
def nus_root(tmp_path: Path) -> Path:
    return write_nus(tmp_path / "nus")
