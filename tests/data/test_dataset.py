"""ramlico.data.dataset: targets over a label order, unknown labels, bad images, no-label images."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from ramlico.data.dataset import MultiLabelDataset, check_vocabulary
from ramlico.data.records import Record

NAMES = ["cat", "dog", "bus"]


@pytest.fixture
def records(tmp_path: Path, png) -> list[Record]:
    return [
        Record(png(tmp_path / "a.png", (255, 0, 0)), ("dog", "cat", "dog"), "labels.csv:2"),
        Record(png(tmp_path / "b.png", (0, 255, 0)), ("bus",), "labels.csv:3"),
        Record(png(tmp_path / "c.png", (0, 0, 255)), (), "labels.csv:4"),
    ]


def test_items_and_targets(records: list[Record], caplog):
    dataset = MultiLabelDataset(records, NAMES)
    assert len(dataset) == 3
    image, target = dataset[0]
    assert image.shape == (3, 12, 12) and image.dtype == torch.float32
    assert torch.equal(image[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # red, default [0, 1] scale
    assert torch.equal(target, torch.tensor([1.0, 1.0, 0.0]))  # duplicate "dog" collapses
    assert torch.equal(dataset[1][1], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(dataset[2][1], torch.zeros(3))
    assert dataset.n_no_label == 1 and dataset.n_skipped == 0 and dataset.n_dropped_labels == 0
    assert (
        "1 of 3 images have no label among the 3 label names; kept as all-negative" in caplog.text
    )
    assert torch.equal(dataset.positives_per_label(), torch.tensor([1, 1, 1]))


def test_transform_is_applied(records: list[Record]):
    dataset = MultiLabelDataset(records, NAMES, transform=lambda im: torch.tensor(im.size))
    assert torch.equal(dataset[0][0], torch.tensor([12, 12]))


def test_unknown_labels_are_listed_with_their_file(records: list[Record]):
    extra = [Record(Path("x.png"), ("zebra", "ant", "cat"), "test.csv:7")]
    with pytest.raises(
        ValueError, match=r"2 labels are not among the 3 label names: \['ant', 'zebra'\]"
    ) as err:
        MultiLabelDataset(records + extra, NAMES)
    assert "test.csv:7" in str(err.value)


def test_unknown_label_list_is_truncated():
    many = [Record(Path("x.png"), tuple(f"l{i:02d}" for i in range(25)))]
    with pytest.raises(
        ValueError, match=r"25 labels .*'l19'\] \.\.\. \(first uses: source unknown\)"
    ):
        check_vocabulary(many, NAMES)


def test_drop_unknown_counts(records: list[Record], caplog):
    caplog.set_level(logging.INFO, logger="ramlico.data.dataset")
    extra = [
        Record(records[0].image, ("zebra", "zebra2")),
        Record(records[1].image, ("zebra", "dog")),
    ]
    dataset = MultiLabelDataset(records + extra, ["cat", "dog"], drop_unknown=True)
    assert dict(dataset.dropped_labels) == {"bus": 1, "zebra": 2, "zebra2": 1}
    assert dataset.n_dropped_labels == 4
    # b.png (bus only), c.png (none) and the zebra/zebra2 image have no kept label
    assert dataset.n_no_label == 3
    assert torch.equal(dataset[4][1], torch.tensor([0.0, 1.0]))
    assert "dropped 4 occurrences of 3 labels outside the 2 label names" in caplog.text


def test_missing_and_corrupt_images_raise_lazily(records: list[Record], tmp_path: Path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_text("not an image")
    bad = [Record(tmp_path / "missing.png", ("cat",), "t.csv:9"), Record(corrupt, ("dog",))]
    dataset = MultiLabelDataset(records + bad, NAMES)  # construction does not open images
    assert len(dataset) == 5
    with pytest.raises(
        FileNotFoundError,
        match=r"image not found: .*missing.png \(record 3 from t.csv:9\).*data.skip_bad_images",
    ):
        dataset[3]
    with pytest.raises(OSError, match=r"cannot read image .*corrupt.png \(record 4\)"):
        dataset[4]


def test_skip_bad_images_counts_and_lists(records: list[Record], tmp_path: Path, caplog):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    bad = [Record(tmp_path / "missing.png", ("cat",)), Record(corrupt, ("dog",))]
    dataset = MultiLabelDataset(bad[:1] + records + bad[1:], NAMES, skip_bad_images=True)
    assert dataset.n_skipped == 2
    assert [p for p, _ in dataset.skipped] == [tmp_path / "missing.png", corrupt]
    assert dataset.skipped[0][1] == "missing"
    assert dataset.skipped[1][1].startswith("unreadable (")
    assert [r.image.name for r in dataset.records] == ["a.png", "b.png", "c.png"]
    assert torch.equal(dataset[0][1], torch.tensor([1.0, 1.0, 0.0]))
    assert "skipped 2 of 5 unreadable images" in caplog.text


def test_bad_label_names(records: list[Record]):
    with pytest.raises(ValueError, match=r"label_names contain duplicates \['cat'\]"):
        MultiLabelDataset(records, ["cat", "cat", "dog", "bus"])
    with pytest.raises(ValueError, match="label_names is empty"):
        MultiLabelDataset(records, [])
