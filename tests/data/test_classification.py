from __future__ import annotations

import pytest
import torch
from PIL import Image

from ramlico.data.classification import (
    GENERATED_CLASSES,
    ClassificationDataModule,
    make_generated_classification,
    read_image_folder,
)


def _tree(root, classes=("n001", "n002"), per=2):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / c / f"{i}.png")


def test_image_folder_indices_and_names(tmp_path):
    _tree(tmp_path / "img")
    samples, names = read_image_folder(tmp_path / "img")
    assert [s[1] for s in samples] == [0, 0, 1, 1] and names == ["n001", "n002"]
    (tmp_path / "imagenet.txt").write_text("n002 goldfish\nn001 tench fish\n")
    assert read_image_folder(tmp_path / "img", tmp_path / "imagenet.txt")[1] == [
        "tench fish",
        "goldfish",
    ]
    (tmp_path / "plain.txt").write_text("tench\ngoldfish\n")
    assert read_image_folder(tmp_path / "img", tmp_path / "plain.txt")[1] == ["tench", "goldfish"]
    (tmp_path / "bad.txt").write_text("only one\n")
    with pytest.raises(ValueError, match="1 names for 2 class folders"):
        read_image_folder(tmp_path / "img", tmp_path / "bad.txt")


def test_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder root not found"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "e" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="has no images"):
        read_image_folder(tmp_path / "e")


def test_generated_set_is_cached_and_labelled(tmp_path):
    root = make_generated_classification(tmp_path / "g", n_per_class=2, image_size=32)
    mtime = (root / "red_circle" / "0000.png").stat().st_mtime_ns
    make_generated_classification(tmp_path / "g", n_per_class=2, image_size=32)
    assert (root / "red_circle" / "0000.png").stat().st_mtime_ns == mtime  # reused, not rewritten
    dm = ClassificationDataModule(source="generated", root=str(root), image_size=32,
                                  generated={"n_per_class": 2, "image_size": 32})  # fmt: skip
    dm.setup("test")
    assert dm.label_names() == list(GENERATED_CLASSES) and len(GENERATED_CLASSES) == 20
    images, labels, index = next(iter(dm.test_dataloader()))
    assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
    # Folder order is the sorted class order: the first 2 images are class 0, then class 1.
    assert labels[:4].tolist() == [0, 0, 1, 1]
    assert index.tolist() == list(range(len(index)))  # the dataset index travels with each image


def test_unreadable_image_raises_with_its_path(tmp_path):
    _tree(tmp_path / "img")
    (tmp_path / "img" / "n001" / "broken.png").write_bytes(b"not an image")
    dm = ClassificationDataModule(source="folder", root=str(tmp_path / "img"), image_size=8)
    dm.setup("test")
    with pytest.raises(OSError, match="broken.png"):
        list(dm.test_dataloader())
