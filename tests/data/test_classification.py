"""The single-label DataModule (any source), the image-folder scanner and its extension rule."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ramlico.data import (
    GENERATED_CLASSES,
    ClassificationDataModule,
    is_image,
    list_images,
    make_generated_classification,
    read_image_folder,
)
from ramlico.data.check import DataCheckError


def _tree(root, classes=("n001", "n002"), per=2, suffix=".png"):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / c / f"{i}{suffix}", format="PNG")


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
    with pytest.raises(ValueError, match="1 names for 2 classes"):
        read_image_folder(tmp_path / "img", tmp_path / "bad.txt")


def test_one_extension_rule_case_insensitive(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    names = ["a.JPEG", "b.jpg", "c.Png", "d.WEBP", "e.bmp", "f.txt", "g.jpeg.bak", "h"]
    for n in names:
        (folder / n).write_bytes(b"x")
    (folder / "sub.jpg").mkdir()  # a folder named like an image is not one
    assert [p.name for p in list_images(folder)] == ["a.JPEG", "b.jpg", "c.Png", "d.WEBP", "e.bmp"]
    assert [is_image(folder / n) for n in ("X.JPG", "y.tif", "z.PnG")] == [True, False, True]
    # the ImageFolder scanner and every named-set reader use the same rule
    _tree(tmp_path / "upper", suffix=".JPG")
    samples, _ = read_image_folder(tmp_path / "upper")
    assert len(samples) == 4 and all(p.suffix == ".JPG" for p, _ in samples)


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
    make_generated_classification(tmp_path / "g", n_per_class=1, image_size=32)  # a smaller set
    assert sorted(p.name for p in (root / "red_circle").iterdir()) == ["0000.png"]
    assert len(list(root.glob("*/*.png"))) == 20  # nothing of the larger set is left behind
    make_generated_classification(tmp_path / "g", n_per_class=2, image_size=32)
    gen = {"n_per_class": 0, "n_test_per_class": 2, "image_size": 32, "seed": 0, "test_seed": 0}
    dm = ClassificationDataModule(source="generated", root=str(tmp_path / "dm"), image_size=32,
                                  generated=gen)  # fmt: skip
    dm.setup("test")
    assert dm.label_names() == list(GENERATED_CLASSES) and len(GENERATED_CLASSES) == 20
    images, labels, index = next(iter(dm.test_dataloader()))
    assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
    # Folder order is the sorted class order: the first 2 images are class 0, then class 1.
    assert labels[:4].tolist() == [0, 0, 1, 1]
    assert index.tolist() == list(range(len(index)))  # the dataset index travels with each image
    # test_seed 0 is the tree make_generated_classification writes with seed 0
    a = Image.open(root / "blue_circle" / "0001.png")
    b = Image.open(tmp_path / "dm" / "test" / "blue_circle" / "0001.png")
    assert a.tobytes() == b.tobytes()
    # an evaluation set: training on it is refused, naming the split
    with pytest.raises(ValueError, match="has no 'train' split"):
        dm.setup("fit")


def test_train_and_test_splits_of_one_source(tmp_path):
    gen = {"n_per_class": 3, "n_test_per_class": 1, "image_size": 16, "seed": 4}
    dm = ClassificationDataModule(source="generated", root=str(tmp_path), image_size=16,
                                  generated=gen, batch_size=8)  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_set) == 60 and len(dm.test_set) == 20
    x, y = dm.train_set[0]  # training items carry no index
    assert x.shape == (3, 16, 16) and y == 0
    assert len(dm.test_set[0]) == 3
    # different seeds: the test images are not training images
    train0 = Image.open(tmp_path / "train" / "blue_circle" / "0000.png")
    test0 = Image.open(tmp_path / "test" / "blue_circle" / "0000.png")
    assert train0.tobytes() != test0.tobytes()


def test_unreadable_image_raises_with_its_path(tmp_path):
    _tree(tmp_path / "img")
    (tmp_path / "img" / "n001" / "broken.png").write_bytes(b"not an image")
    # the up-front check finds it before any batch
    dm = ClassificationDataModule(source="folder", root=str(tmp_path / "img"), image_size=8)
    with pytest.raises(DataCheckError, match="broken.png"):
        dm.setup("test")
    # without the check, loading the batch names it
    dm = ClassificationDataModule(source="folder", root=str(tmp_path / "img"), image_size=8,
                                  check_images=False)  # fmt: skip
    dm.setup("test")
    with pytest.raises(OSError, match="broken.png"):
        list(dm.test_dataloader())
    # or it is dropped and listed
    dm = ClassificationDataModule(source="folder", root=str(tmp_path / "img"), image_size=8,
                                  skip_bad_images=True)  # fmt: skip
    dm.setup("test")
    assert len(dm.test_set) == 4


def test_images_of_any_mode_reach_the_model_as_rgb(tmp_path):
    (tmp_path / "t" / "grey").mkdir(parents=True)
    Image.new("L", (10, 6), 128).save(tmp_path / "t" / "grey" / "0.png")
    Image.new("RGBA", (6, 10), (10, 20, 30, 40)).save(tmp_path / "t" / "grey" / "1.png")
    dm = ClassificationDataModule(source="folder", root=str(tmp_path / "t"), image_size=8,
                                  mean=[0, 0, 0], std=[1, 1, 1])  # fmt: skip
    dm.setup("test")
    grey, rgba = dm.test_set[0][0], dm.test_set[1][0]
    assert grey.shape == rgba.shape == (3, 8, 8)
    torch.testing.assert_close(grey, torch.full((3, 8, 8), 128 / 255))
    torch.testing.assert_close(rgba[:, 4, 4], torch.tensor([10, 20, 30]) / 255)
