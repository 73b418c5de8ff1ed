"""ramlico.data.labels: protocol label lists, LabelSpace order and splits, multi-hot targets."""

from __future__ import annotations

import pytest
import torch

from ramlico.data.labels import (
    COCO_EXCLUDED,
    COCO_SEEN,
    COCO_UNSEEN,
    NUS_UNSEEN,
    LabelSpace,
    multi_hot,
)


def test_coco_split_sizes_and_disjointness():
    assert (len(COCO_SEEN), len(COCO_UNSEEN), len(COCO_EXCLUDED)) == (48, 17, 15)
    assert not set(COCO_SEEN) & set(COCO_UNSEEN)
    # the 80 COCO categories = 65 single-word protocol labels + 15 multi-word exclusions
    assert len(set(COCO_SEEN) | set(COCO_UNSEEN) | set(COCO_EXCLUDED)) == 80
    assert all(" " in name for name in COCO_EXCLUDED)
    assert not any(" " in name for name in COCO_SEEN + COCO_UNSEEN)
    assert list(COCO_SEEN) == sorted(COCO_SEEN) and list(COCO_UNSEEN) == sorted(COCO_UNSEEN)
    assert COCO_UNSEEN[:3] == ("airplane", "bus", "cake") and COCO_SEEN[-1] == "zebra"
    assert "cell phone" in COCO_EXCLUDED and "hair drier" in COCO_EXCLUDED


def test_nus_unseen_concepts():
    assert len(NUS_UNSEEN) == 81 == len(set(NUS_UNSEEN))
    assert list(NUS_UNSEEN) == sorted(NUS_UNSEEN)
    # the 6 concepts that are not among the 1000 tags
    assert {"computer", "fire", "map", "swimmers", "tattoo", "whales"} <= set(NUS_UNSEEN)


def test_label_space_order_and_splits():
    space = LabelSpace(seen=["dog", "cat", "ant"], unseen=["zebra", "bus"])
    assert space.seen == ("ant", "cat", "dog")
    assert space.unseen == ("bus", "zebra")
    assert space.gzsl == ("ant", "cat", "dog", "bus", "zebra")
    assert space.for_split("train") == space.for_split("seen") == space.seen
    assert space.for_split("zsl") == space.for_split("unseen") == space.unseen
    assert space.for_split("gzsl") == space.gzsl
    assert space == LabelSpace(["ant", "dog", "cat"], ["bus", "zebra"])
    with pytest.raises(ValueError, match=r"unknown split name 'val'.*'gzsl'"):
        space.for_split("val")


def test_label_space_rejects_overlap_duplicates_and_empty():
    with pytest.raises(ValueError, match=r"\['cat'\] are both seen and unseen"):
        LabelSpace(seen=["cat", "dog"], unseen=["cat"])
    with pytest.raises(ValueError, match=r"seen labels contain duplicates \['dog'\]"):
        LabelSpace(seen=["dog", "dog"], unseen=["cat"])
    with pytest.raises(ValueError, match="non-empty strings"):
        LabelSpace(seen=["dog", " "], unseen=["cat"])
    with pytest.raises(ValueError, match="at least one"):
        LabelSpace(seen=[], unseen=[])
    with pytest.raises(TypeError, match="not a single string"):
        LabelSpace(seen="dog", unseen=["cat"])


def test_multi_hot_values_and_unknown():
    assert torch.equal(multi_hot(["c", "a", "a"], ["a", "b", "c"]), torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(multi_hot([], ["a", "b"]), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\['x', 'y'\] are not in the label list"):
        multi_hot(["y", "a", "x"], ["a", "b"])
