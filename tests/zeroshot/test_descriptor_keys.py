"""The published descriptor files (DCLIP / LaZSL / CuPL) load as they are for the five datasets.

Each test writes a fake descriptor file with the published key list (``published_keys/``, class
names only; the descriptor values are generated) and the dataset's own class list in its
distributed layout, reads the dataset with its data source, and checks that every
class finds its key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from ramlico.data.imagenet_info import imagenet_class_names, imagenet_subset_indices
from ramlico.data.sources import build_source
from ramlico.zeroshot.baselines import cupl_sentences
from ramlico.zeroshot.descriptors import (
    descriptor_texts,
    load_descriptors,
    match_class_keys,
    normalize_class_name,
)

KEYS = Path(__file__).parent / "published_keys"
# The DCLIP / LaZSL ImageNet file: open_clip's names except at these indices (read in the file).
DCLIP_IMAGENET_CHANGES = {27: "eft", 638: "maillot", 744: "projectile", 836: "sunglass"}


def read_named_dataset(name: str, root: Path):
    """``(samples, class names)`` of the test split of single-label source ``name``."""
    source = build_source(name, "singlelabel", root)
    images = source.images("test")
    return list(zip(images.paths, images.labels, strict=True)), source.class_names()


def _lines(name: str) -> list[str]:
    return [ln for ln in (KEYS / name).read_text(encoding="utf-8").splitlines() if ln]


def _fake_file(path: Path, keys: list[str]) -> Path:
    """A descriptor file with the published keys (in file order) and generated values."""
    path.write_text(json.dumps({k: [f"generated descriptor {i}"] for i, k in enumerate(keys)}))
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _check_loads(tmp_path: Path, names: list[str], keys: list[str]) -> list[str]:
    """The fake file loads for ``names``; returns each class's key."""
    data = load_descriptors(_fake_file(tmp_path / "descriptors.json", keys))
    texts = descriptor_texts(data, names)
    matched = match_class_keys(names, data)
    assert len(texts) == len(names) and len(set(matched)) == len(names)  # one key per class
    for name, key, sentences in zip(names, matched, texts, strict=True):
        assert normalize_class_name(key).startswith(normalize_class_name(name).split(" (")[0])
        assert sentences == [key.replace("_", " ") + ", which has generated descriptor "
                             + str(keys.index(key))]  # fmt: skip
    return matched


def test_dclip_imagenet_keys_are_the_bundled_names(tmp_path):
    keys = list(IMAGENET_CLASSNAMES)
    for i, name in DCLIP_IMAGENET_CHANGES.items():
        keys[i] = name
    assert len(set(keys)) == 1000
    names = imagenet_class_names()
    assert _check_loads(tmp_path, names, keys) == keys == names  # exact, in label order
    # ImageNet-R / -A score 200 classes with the same 1000-key file.
    subset = [names[i] for i in imagenet_subset_indices("imagenet_r")]
    assert _check_loads(tmp_path, subset, keys) == subset


def test_cupl_imagenet_file_maps_its_repeated_names(tmp_path):
    """CuPL keys its file by open_clip's list: 998 keys (missile, sunglasses once each)."""
    keys = list(dict.fromkeys(IMAGENET_CLASSNAMES))
    assert len(keys) == 998
    path = _fake_file(tmp_path / "cupl_imagenet.json", keys)
    sentences = cupl_sentences(path, imagenet_class_names())
    by_key = {k: [f"generated descriptor {i}"] for i, k in enumerate(keys)}
    assert sentences[27] == by_key["newt"] and sentences[638] == by_key["tights"]
    # both missiles and both sunglasses share CuPL's one entry, as in CuPL's own evaluation
    assert sentences[657] == sentences[744] == by_key["missile"]
    assert sentences[836] == sentences[837] == by_key["sunglasses"]
    assert sentences[:27] == [by_key[k] for k in keys[:27]]


def test_dclip_cub_keys_match_the_class_folders(tmp_path):
    folders = _lines("cub_classes.txt")
    root = tmp_path / "CUB_200_2011"
    _write(root / "classes.txt", "".join(f"{i} {f}\n" for i, f in enumerate(folders, 1)))
    _write(root / "images.txt", f"1 {folders[140]}/x.jpg\n")
    _write(root / "image_class_labels.txt", "1 141\n")
    _write(root / "train_test_split.txt", "1 0\n")
    (root / "images").mkdir()
    samples, names = read_named_dataset("cub", root)
    keys = _lines("dclip_cub_keys.txt")
    assert _check_loads(tmp_path, names, keys) == keys == names  # identical names, same order
    assert names[140] == "Artic Tern" and samples[0][1] == 140  # the dataset's own spelling
    corrected = [*names[:140], "Arctic Tern", *names[141:]]  # a user's corrected name: alias
    assert match_class_keys(corrected, keys)[140] == "Artic Tern"


def test_dclip_food101_keys_match_meta_classes(tmp_path):
    keys = _lines("dclip_food101_keys.txt")
    root = tmp_path / "food-101"
    _write(root / "meta" / "classes.txt", "".join(k.replace(" ", "_") + "\n" for k in keys))
    _write(root / "meta" / "test.txt", "cup_cakes/1\n")
    (root / "images").mkdir()
    _, names = read_named_dataset("food101", root)
    assert _check_loads(tmp_path, names, keys) == keys


def test_dclip_pets_keys_match_the_annotation_breeds(tmp_path):
    keys = _lines("dclip_pets_keys.txt")
    breeds = sorted(keys, key=str.lower)  # the dataset's class ids: case-insensitive order
    root = tmp_path / "oxford-iiit-pet"
    rows = [f"{b.replace(' ', '_')}_{i} {i} 1 1" for i, b in enumerate(breeds, 1)]
    _write(root / "annotations" / "test.txt", "\n".join(rows) + "\n")
    (root / "images").mkdir()
    _, names = read_named_dataset("pets", root)
    assert names == breeds
    # The file's order differs from the label order; matching is by name, never by position.
    assert _check_loads(tmp_path, names, keys) == breeds
    assert names[5] == "Bengal" and keys[1] == "Bengal"


def test_dclip_places365_keys_match_the_categories(tmp_path):
    root = tmp_path / "places365"
    _write(root / "categories_places365.txt", "\n".join(_lines("places365_categories.txt")))
    _write(root / "places365_val.txt", "Places365_val_00000001.jpg 8\n")
    (root / "val_256").mkdir(parents=True)
    _, names = read_named_dataset("places365", root)
    keys = _lines("dclip_places365_keys.txt")
    assert sum("-" in k for k in keys) == 75  # the sub-category form apartment_building-outdoor
    matched = _check_loads(tmp_path, names, keys)
    assert matched == keys and names[8] == "apartment_building-outdoor"
    # exact except the two keys the file disambiguates (alias table)
    assert {n: k for n, k in zip(names, keys, strict=True) if n != k} == {
        "arcade": "arcade (passageway)", "lock_chamber": "lock_chamber (canal)"
    }  # fmt: skip
    # the earlier space form still matches by normalisation
    old = [n.replace("-", " ") for n in names]
    assert match_class_keys(old, keys) == keys


def test_unmatched_names_list_both_sides():
    # open_clip's list against the DCLIP file: 4 names differ, and 2 of them are repeats.
    keys = list(IMAGENET_CLASSNAMES)
    for i, name in DCLIP_IMAGENET_CHANGES.items():
        keys[i] = name
    with pytest.raises(ValueError) as err:
        match_class_keys(list(IMAGENET_CLASSNAMES), keys, source="descriptors_imagenet.json")
    text = str(err.value)
    assert text.startswith("descriptors_imagenet.json: 4 of 1000 class names have no key:")
    assert "['newt', 'tights', 'missile', 'sunglasses']" in text
    assert "keys no class matched (4): ['eft', 'maillot', 'projectile', 'sunglass']" in text


def test_normalised_match_is_one_to_one():
    # "Red-winged" and "red winged" normalise alike: a name matching two free keys is ambiguous.
    with pytest.raises(ValueError, match=r"no key: \['red_winged'\]"):
        match_class_keys(["red_winged"], ["Red-winged", "red winged"])
    assert match_class_keys(["Red-winged", "red_winged"], ["Red-winged", "red winged"]) == [
        "Red-winged", "red winged"
    ]  # fmt: skip
