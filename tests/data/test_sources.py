"""Data sources: the registry, and the standard sets read from tiny fake copies of their
distributed on-disk layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from ramlico.data import ClassificationDataModule
from ramlico.data.imagenet_info import (
    imagenet_class_names,
    imagenet_subset_indices,
    imagenet_subset_wnids,
    imagenet_wnids,
)
from ramlico.data.labelled_images import ImageFiles
from ramlico.data.sources import (
    SingleLabelSource,
    build_source,
    get_source,
    list_sources,
    register_source,
)
from ramlico.data.sources.cub import cub_class_name


def read_named_dataset(name: str, root: Path, split: str | None = None):
    """``(samples, class names)`` of the test split of single-label source ``name``."""
    source = build_source(name, "singlelabel", root, **({"split": split} if split else {}))
    images = source.images("test")
    return list(zip(images.paths, images.labels, strict=True)), source.class_names()


def _touch(path: Path, image: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (20, 12), (200, 10, 10)).save(path)
    else:
        path.write_bytes(b"")
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bundled_imagenet_facts():
    wnids, names = imagenet_wnids(), imagenet_class_names()
    assert len(wnids) == 1000 == len(set(wnids)) and wnids == sorted(wnids)
    assert (wnids[0], names[0]) == ("n01440764", "tench")
    assert (wnids[999], names[999]) == ("n15075141", "toilet paper")
    # 1000 distinct names: open_clip's list with its repeated / differing names fixed (index: name)
    assert len(set(names)) == 1000
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    differ = {
        i: n for i, (n, o) in enumerate(zip(names, IMAGENET_CLASSNAMES, strict=True)) if n != o
    }
    assert differ == {27: "eft", 638: "maillot", 744: "projectile", 836: "sunglass"}
    for subset in ("imagenet_r", "imagenet_a"):
        idx = imagenet_subset_indices(subset)
        assert len(idx) == 200 and idx == sorted(idx)
        assert [wnids[i] for i in idx] == imagenet_subset_wnids(subset)
    # The two lists share 86 classes (the reference code mixes them up for -R).
    both = set(imagenet_subset_indices("imagenet_r")) & set(imagenet_subset_indices("imagenet_a"))
    assert len(both) == 86
    assert imagenet_subset_indices("imagenet_a")[:3] == [6, 11, 13]  # tiger shark, goldfinch, junco


def test_imagenet_val_and_sketch_wnid_folders(tmp_path):
    for name in ("a.JPEG", "b.JPEG"):
        _touch(tmp_path / "val" / "n01443537" / name)
    _touch(tmp_path / "val" / "n15075141" / "c.JPEG")
    samples, names = read_named_dataset("imagenet", tmp_path / "val")
    assert [(p.name, y) for p, y in samples] == [("a.JPEG", 1), ("b.JPEG", 1), ("c.JPEG", 999)]
    assert len(names) == 1000 and names[1] == "goldfish"
    _touch(tmp_path / "sk" / "sketch" / "n01440764" / "s.png")
    samples, _ = read_named_dataset("imagenet_sketch", tmp_path / "sk")
    assert [(p.name, y) for p, y in samples] == [("s.png", 0)]
    _touch(tmp_path / "bad" / "cats" / "x.jpg")
    with pytest.raises(ValueError, match="'cats'.*not WNIDs"):
        read_named_dataset("imagenet", tmp_path / "bad")


def test_imagenet_v2_folders_are_class_indices(tmp_path):
    _touch(tmp_path / "0" / "x.jpeg")
    _touch(tmp_path / "999" / "y.jpeg")
    _touch(tmp_path / "10" / "z.jpeg")
    samples, names = read_named_dataset("imagenet_v2", tmp_path)
    assert sorted((p.name, y) for p, y in samples) == [
        ("x.jpeg", 0),
        ("y.jpeg", 999),
        ("z.jpeg", 10),
    ]
    assert len(names) == 1000


@pytest.mark.parametrize("subset", ["imagenet_r", "imagenet_a"])
def test_imagenet_r_a_use_the_200_class_subset(tmp_path, subset):
    wnids = imagenet_subset_wnids(subset)
    _touch(tmp_path / wnids[0] / "x.jpg")
    _touch(tmp_path / wnids[199] / "y.jpg")
    samples, names = read_named_dataset(subset, tmp_path)
    assert [(p.name, y) for p, y in samples] == [("x.jpg", 0), ("y.jpg", 199)]
    full = imagenet_class_names()
    assert names == [full[i] for i in imagenet_subset_indices(subset)]
    _touch(tmp_path / "n01440764" / "t.jpg")  # tench is in neither subset
    with pytest.raises(ValueError, match="n01440764"):
        read_named_dataset(subset, tmp_path)


def test_cub_names_labels_and_test_split(tmp_path):
    _write(tmp_path / "classes.txt", "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    _write(tmp_path / "images.txt", "1 001.Black_footed_Albatross/a.jpg\n"
           "2 002.Laysan_Albatross/b.jpg\n3 002.Laysan_Albatross/c.jpg\n")  # fmt: skip
    (tmp_path / "images").mkdir()
    _write(tmp_path / "image_class_labels.txt", "1 1\n2 2\n3 2\n")
    _write(tmp_path / "train_test_split.txt", "1 0\n2 1\n3 0\n")
    samples, names = read_named_dataset("cub", tmp_path)
    assert names == ["Black-footed Albatross", "Laysan Albatross"]
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in samples] == [
        ("images/001.Black_footed_Albatross/a.jpg", 0),
        ("images/002.Laysan_Albatross/c.jpg", 1),
    ]
    assert len(read_named_dataset("cub", tmp_path, split="all")[0]) == 3
    assert cub_class_name("013.Bobolink") == "Bobolink"
    assert cub_class_name("020.Black_and_white_Warbler") == "Black-and-white Warbler"
    (tmp_path / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_test_split\.txt not found.*CUB_200_2011"):
        read_named_dataset("cub", tmp_path)


def test_pets_from_annotations(tmp_path):
    _write(tmp_path / "annotations" / "test.txt",
           "#Image CLASS-ID SPECIES BREED ID\nAbyssinian_1 1 1 1\namerican_bulldog_10 2 2 1\n"
           "Abyssinian_2 1 1 1\n")  # fmt: skip
    (tmp_path / "images").mkdir()
    samples, names = read_named_dataset("pets", tmp_path)
    assert names == ["Abyssinian", "american bulldog"]
    assert [(p.name, y) for p, y in samples] == [
        ("Abyssinian_1.jpg", 0), ("american_bulldog_10.jpg", 1), ("Abyssinian_2.jpg", 0)
    ]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        read_named_dataset("pets", tmp_path, split="trainval")


def test_food101_from_meta(tmp_path):
    _write(tmp_path / "meta" / "classes.txt", "apple_pie\nbaby_back_ribs\n")
    _write(tmp_path / "meta" / "test.txt", "baby_back_ribs/7\napple_pie/3\n")
    (tmp_path / "images").mkdir()
    samples, names = read_named_dataset("food101", tmp_path)
    assert names == ["apple pie", "baby back ribs"]
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in samples] == [
        ("images/baby_back_ribs/7.jpg", 1), ("images/apple_pie/3.jpg", 0)
    ]  # fmt: skip


def test_places365_val(tmp_path):
    _write(tmp_path / "categories_places365.txt",
           "/a/airfield 0\n/a/apartment_building/outdoor 1\n/c/corn_field 2\n")  # fmt: skip
    _write(
        tmp_path / "places365_val.txt",
        "Places365_val_00000001.jpg 2\nPlaces365_val_00000002.jpg 0\n",
    )
    with pytest.raises(FileNotFoundError, match="val_large"):
        read_named_dataset("places365", tmp_path)
    (tmp_path / "val_large").mkdir()
    samples, names = read_named_dataset("places365", tmp_path)
    assert names == ["airfield", "apartment_building-outdoor", "corn_field"]  # descriptor-key form
    assert [(p.parent.name, p.name, y) for p, y in samples] == [
        ("val_large", "Places365_val_00000001.jpg", 2),
        ("val_large", "Places365_val_00000002.jpg", 0),
    ]


def test_registry_names_unknown_sources_and_options(tmp_path):
    named = ["imagenet", "imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a", "cub",
             "pets", "food101", "places365"]  # fmt: skip
    assert set(named + ["folder", "generated", "cifar10", "cifar100", "svhn"]) == set(
        list_sources("singlelabel")
    )
    assert list_sources("multilabel") == ["coco", "custom", "generated", "nus_wide"]
    with pytest.raises(ValueError, match=r"unknown singlelabel data source 'imagenette'; "
                       r"available: \['cifar10'"):  # fmt: skip
        read_named_dataset("imagenette", tmp_path)
    with pytest.raises(ValueError, match="'coco' is a multilabel source"):
        get_source("coco", "singlelabel")
    with pytest.raises(TypeError, match=r"'imagenet': unknown option\(s\) \['split'\]; it takes"):
        read_named_dataset("imagenet", tmp_path, split="train")
    with pytest.raises(ValueError, match="'imgnet'"):
        ClassificationDataModule(source="imgnet", root=str(tmp_path))
    # an evaluation set has no training split
    with pytest.raises(ValueError, match="'places365' has no 'train' split"):
        build_source("places365", "singlelabel", tmp_path).images("train")


def test_datamodule_loads_a_named_set_with_optional_names_file(tmp_path):
    wnids = imagenet_subset_wnids("imagenet_a")
    _touch(tmp_path / "a" / wnids[3] / "x.jpg", image=True)
    dm = ClassificationDataModule(source="imagenet_a", root=str(tmp_path / "a"), image_size=16)
    dm.setup("test")
    assert (
        len(dm.label_names()) == 200
        and dm.label_names()[3] == imagenet_class_names()[imagenet_subset_indices("imagenet_a")[3]]
    )
    image, label, _ = next(iter(dm.test_dataloader()))
    assert image.shape == (1, 3, 16, 16) and label.tolist() == [3]
    assert torch.isfinite(image).all()
    names = _write(tmp_path / "names.txt", "\n".join(f"c{i}" for i in range(200)))
    dm = ClassificationDataModule(
        source="imagenet_a", root=str(tmp_path / "a"), class_names_file=str(names)
    )
    assert dm.label_names()[199] == "c199"
    _write(names, "one\ntwo\n")
    dm = ClassificationDataModule(
        source="imagenet_a", root=str(tmp_path / "a"), class_names_file=str(names)
    )
    with pytest.raises(ValueError, match="2 names for 200 classes"):
        dm.setup("test")


def test_imagenet_flat_val_with_kaggle_solution_csv(tmp_path):
    val = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    for name in ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"):
        _touch(val / name)
    with pytest.raises(FileNotFoundError, match="LOC_val_solution.csv not found"):
        read_named_dataset("imagenet", val)
    _write(val.parent / "LOC_val_solution.csv",
           "ImageId,PredictionString\nILSVRC2012_val_00000002,n01443537 1 2 3 4 n01443537 5 6 7 8\n"
           "ILSVRC2012_val_00000001,n15075141 1 2 3 4\n")  # fmt: skip
    samples, names = read_named_dataset("imagenet", val)
    assert [(p.name, y) for p, y in samples] == [
        ("ILSVRC2012_val_00000001.JPEG", 999), ("ILSVRC2012_val_00000002.JPEG", 1)
    ]  # fmt: skip
    assert names[999] == "toilet paper"


class TwoColours:
    """Not a source (no source base class)."""


class Squares(SingleLabelSource):
    """Red and blue squares written under root: the smallest complete single-label source."""

    splits = ("train", "test")

    def __init__(self, root, per_class: int = 2) -> None:
        super().__init__(root)
        self.per_class = per_class

    def prepare(self) -> None:
        for split in self.splits:
            for c, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
                for i in range(self.per_class):
                    (self.root / split).mkdir(parents=True, exist_ok=True)
                    Image.new("RGB", (6, 6), colour).save(self.root / split / f"{c}_{i}.png")

    def class_names(self) -> list[str]:
        return ["red square", "blue square"]

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        files = sorted((self.root / split).glob("*.png"))
        return ImageFiles([(p, int(p.name[0])) for p in files])


def test_a_source_of_ones_own_by_import_path_or_registered_name(tmp_path, monkeypatch):
    from ramlico.data.sources import registry

    # registering below must not leak into other tests
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    dm = ClassificationDataModule(source=f"{__name__}.Squares", root=str(tmp_path), per_class=3,
                                  image_size=6, mean=[0, 0, 0], std=[1, 1, 1])  # fmt: skip
    dm.setup("fit")
    assert dm.label_names() == ["red square", "blue square"] and len(dm.train_set) == 6
    image, label, index = dm.test_set[5]
    assert label == 1 and index == 5 and image[:, 0, 0].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['per_klass'\]; it takes "
                       r"\['per_class'\]"):  # fmt: skip
        ClassificationDataModule(source=f"{__name__}.Squares", root=str(tmp_path), per_klass=3)
    with pytest.raises(TypeError, match="is not a data source"):
        get_source(f"{__name__}.TwoColours", "singlelabel")
    register_source("test_squares")(Squares)
    assert "test_squares" in list_sources("singlelabel")
    assert ClassificationDataModule(source="test_squares", root=str(tmp_path)).label_names()[0] == (
        "red square"
    )
    with pytest.raises(ValueError, match="'folder' .* is taken by"):
        register_source("folder")(Squares)


def test_the_guides_multilabel_source_example_runs(tmp_path, monkeypatch):
    """The VOC source of docs/adding_a_method.md, executed as written, on a fake layout."""
    import re

    from ramlico.data import MultiLabelDataModule
    from ramlico.data.sources import registry

    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    guide = (Path(__file__).resolve().parents[2] / "docs" / "adding_a_method.md").read_text()
    code = re.search(r"```python\n(# ramlico/data/sources/voc.py\n.*?)```", guide, re.S).group(1)
    exec(compile(code, "voc.py", "exec"), {"__name__": "voc_example"})  # registers "voc"
    labels = ["cat", "dog", "cow", "sofa", "car"]
    for name, n in (("trainval", 6), ("test", 4)):
        rows = ["image,labels"]
        for i in range(n):
            _touch(tmp_path / "2007" / f"{name}{i}.png", image=True)
            rows.append(f"{name}{i}.png,{labels[i % 5]}|{labels[(i + 1) % 5]}")
        _write(tmp_path / "2007" / f"{name}.csv", "\n".join(rows) + "\n")
    dm = MultiLabelDataModule(source="voc", root=str(tmp_path), image_size=8, batch_size=2)
    dm.setup("fit")
    assert dm.label_names("train") == ["car", "cat", "dog"]  # seen: trained labels minus unseen
    assert dm.label_names("zsl") == ["cow", "sheep", "sofa", "train", "tvmonitor"]
    assert dm.eval_splits == ["zsl", "gzsl"] and len(dm.train_dataset) == 6
