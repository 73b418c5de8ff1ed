"""Descriptor files: loading, the reference's sentence rule, padding."""

from __future__ import annotations

import json

import pytest
import torch

from ramlico.zeroshot.descriptors import (
    descriptor_texts,
    load_descriptors,
    modify_descriptor,
    pad_descriptor_embeddings,
)


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        ("a freshwater fish", "which is a freshwater fish"),
        ("antennae", "which is antennae"),  # reference quirk: any text starting with 'a'
        ("has a long tail", "which has a long tail"),
        ("often found in water", "which often found in water"),
        ("typically red", "which typically red"),
        ("may be spotted", "which may be spotted"),
        ("can fly", "which can fly"),
        ("used for cutting", "which is used for cutting"),
        ("black feet", "which has black feet"),
        ("", "which has "),
        ("Antennae", "which has Antennae"),  # raw, case-sensitive prefix test
    ],
)
def test_modify_descriptor(descriptor, expected):
    assert modify_descriptor(descriptor) == expected


def test_descriptor_texts_reference_examples():
    descs = {
        "tench": ["a freshwater fish", "olive green"],
        "Black_footed_Albatross": ["black feet"],
    }
    texts = descriptor_texts(descs, ["tench", "Black_footed_Albatross"], suffix=".")
    assert texts == [
        ["tench, which is a freshwater fish.", "tench, which has olive green."],
        ["Black footed Albatross, which has black feet."],
    ]
    plain = descriptor_texts(descs, ["Black_footed_Albatross"] + ["tench"], prefix="A photo of a ")
    assert plain[0] == ["A photo of a Black footed Albatross, which has black feet"]
    assert plain[1][0] == "A photo of a tench, which is a freshwater fish"


def test_descriptor_texts_names_missing_classes_and_unused_keys():
    descs = {"cat": ["a pet"], "dog": ["a pet"], "owl": ["a bird"]}
    with pytest.raises(
        ValueError, match=r"no key: \['lemur'\]; keys no class matched \(1\): \['owl'\]"
    ):
        descriptor_texts(descs, ["cat", "dog", "lemur"])
    # A file that describes more classes than the dataset ranks serves the subset, in label order.
    assert descriptor_texts(descs, ["dog", "cat"]) == [
        ["dog, which is a pet"],
        ["cat, which is a pet"],
    ]


def test_load_descriptors(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"zebra": ["stripes"], "apple": [], "mango": ["a fruit"]}))
    loaded = load_descriptors(path)
    assert list(loaded) == ["zebra", "apple", "mango"]  # file order, never sorted
    assert loaded["apple"] == [""]  # empty list -> single empty descriptor
    texts = descriptor_texts(loaded, list(loaded))
    assert texts[1] == ["apple, which has "]


@pytest.mark.parametrize("content", [["a", "b"], {"cat": "a pet"}, {"cat": [1, 2]}])
def test_load_descriptors_rejects_bad_format(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="descriptor file"):
        load_descriptors(path)


def test_pad_descriptor_embeddings():
    e = [torch.full((2, 3), 1.0), torch.full((4, 3), 2.0), torch.full((1, 3), 3.0)]
    feats, mask = pad_descriptor_embeddings(e)
    assert feats.shape == (3, 4, 3) and mask.shape == (3, 4) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [2, 4, 1]
    for k, x in enumerate(e):
        assert torch.equal(feats[k, : len(x)], x)
        assert torch.equal(feats[k, len(x) :], torch.zeros(4 - len(x), 3))


def test_pad_descriptor_embeddings_errors():
    with pytest.raises(ValueError, match="at least one class"):
        pad_descriptor_embeddings([])
    with pytest.raises(ValueError, match=r"bad classes \[1\]"):
        pad_descriptor_embeddings([torch.ones(2, 3), torch.ones(0, 3)])
    with pytest.raises(ValueError, match="common D"):
        pad_descriptor_embeddings([torch.ones(2, 3), torch.ones(2, 4)])
