"""ramlico.data.records: COCO instances, RAM's json lists and custom CSV / JSON-lines files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ramlico.data.records import (
    Record,
    read_coco_file,
    read_coco_instances,
    read_label_file,
    read_ram_json,
)


def test_coco_instances_vocabulary_duplicates_and_empty(coco_root: Path, caplog):
    caplog.set_level(logging.INFO, logger="ramlico.data.records")
    ann = coco_root / "annotations" / "instances_val2014.json"
    records = read_coco_instances(ann, coco_root / "val2014")
    names = [f"COCO_val2014_{i:012d}.jpg" for i in range(4)]
    assert [r.image for r in records] == [coco_root / "val2014" / n for n in names]
    # v0: person + dog (dining table dropped); v1: car x2 collapses; v2: cup; v3: no annotation
    assert [r.labels for r in records] == [("person", "dog"), ("car",), ("cup",), ()]
    assert records[0].source == str(ann)
    text = caplog.text
    assert "dropped 1 annotations of 1 categories outside the 65-label vocabulary" in text
    assert "{'dining table': 1}" in text
    assert "1 of 4 images have no label of the vocabulary; kept as all-negative" in text


def test_coco_image_with_only_excluded_category_is_kept_negative(coco_root: Path, caplog):
    ann = coco_root / "annotations" / "instances_train2014.json"
    records = read_coco_instances(ann, coco_root / "train2014")
    assert [r.labels for r in records] == [("person", "dog"), ("car",), ()]
    assert "1 of 3 images have no label" in caplog.text


def test_coco_custom_vocabulary(coco_root: Path):
    ann = coco_root / "annotations" / "instances_val2014.json"
    records = read_coco_instances(ann, coco_root / "val2014", vocabulary=["dog", "dining table"])
    assert [r.labels for r in records] == [("dog", "dining table"), (), (), ()]


def test_coco_bad_files(tmp_path: Path, coco_instances):
    ram_style = tmp_path / "ram.json"
    ram_style.write_text(json.dumps({"classes": ["dog"], "images": [["a.jpg", ["dog"]]]}))
    with pytest.raises(
        ValueError, match=r"missing keys \['annotations', 'categories'\].*read_ram_json"
    ):
        read_coco_instances(ram_style, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco_instances(["a.jpg"], [(0, 1), (0, 999)])))
    with pytest.raises(ValueError, match=r"annotation 1 has category_id 999"):
        read_coco_instances(bad, tmp_path)
    with pytest.raises(FileNotFoundError, match="COCO instances json not found"):
        read_coco_instances(tmp_path / "nope.json", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_coco_instances(broken, tmp_path)


def test_ram_json_paths_and_duplicates(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="ramlico.data.records")
    images = tmp_path / "images"
    existing = images / "b.jpg"
    existing.parent.mkdir()
    existing.touch()
    data = {
        "classes": ["dog", "cat"],
        "images": [
            ["a.jpg", ["dog", "dog", "cat"]],
            [str(existing), ["cat"]],
            ["/mnt/nas/elsewhere/COCO_val2014_000000331627.jpg", ["tie", "tie"]],
        ],
    }
    path = tmp_path / "test.json"
    path.write_text(json.dumps(data))
    records = read_ram_json(path, images)
    assert records == [
        Record(images / "a.jpg", ("dog", "cat"), str(path)),
        Record(existing, ("cat",), str(path)),
        Record(images / "COCO_val2014_000000331627.jpg", ("tie",), str(path)),
    ]
    assert "1 absolute paths not found here, remapped" in caplog.text
    assert "labels ['tie'] are used by images but missing from 'classes'" in caplog.text
    # default image root: the json's folder
    assert read_ram_json(path)[0].image == tmp_path / "a.jpg"


def test_ram_json_malformed_entry(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": [["a.jpg", ["dog"]], ["b.jpg", "dog"]]}))
    with pytest.raises(ValueError, match=r"x.json: images entry 1 is .*expected \[path, \[label"):
        read_ram_json(path, tmp_path)
    path.write_text(json.dumps([["a.jpg", ["dog"]]]))
    with pytest.raises(ValueError, match="expected an object with an 'images' list"):
        read_ram_json(path, tmp_path)


def test_read_coco_file_detects_format(coco_root: Path, tmp_path: Path):
    ann = coco_root / "annotations" / "instances_val2014.json"
    assert read_coco_file(ann, coco_root / "val2014")[2].labels == ("cup",)
    ram = tmp_path / "test_65_filtered.json"
    ram.write_text(json.dumps({"classes": ["cup"], "images": [["x.jpg", ["cup", "cup"]]]}))
    assert read_coco_file(ram, tmp_path / "val2014") == [
        Record(tmp_path / "val2014" / "x.jpg", ("cup",), str(ram))
    ]


def test_csv_label_file(tmp_path: Path):
    path = tmp_path / "labels" / "train.csv"
    path.parent.mkdir()
    path.write_text(
        "image,labels\n"
        "a.png,dog|cat|dog\n"
        "\n"
        "sub/b.png,\n"
        f"{tmp_path / 'abs.png'}, red circle | bus \n"
    )
    records = read_label_file(path)
    assert records == [
        Record(path.parent / "a.png", ("dog", "cat"), f"{path}:2"),
        Record(path.parent / "sub" / "b.png", (), f"{path}:4"),
        Record(tmp_path / "abs.png", ("red circle", "bus"), f"{path}:5"),
    ]
    assert (
        read_label_file(path, image_root=tmp_path / "imgs")[0].image == tmp_path / "imgs" / "a.png"
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("path,tags\na.png,dog\n", r"train.csv:1: header is \['path', 'tags'\]"),
        ("image,labels\na.png,dog\nb.png,dog,cat\n", r"train.csv:3: expected 2 fields .* got 3"),
        ("image,labels\na.png,dog||cat\n", r"train.csv:2: empty image path or empty label"),
        ("image,labels\n,dog\n", r"train.csv:2: empty image path"),
        ("", r"train.csv:1: header is None"),
    ],
)
def test_csv_malformed_rows(tmp_path: Path, content: str, match: str):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_label_file(path)


def test_jsonl_label_file(tmp_path: Path):
    for suffix in (".jsonl", ".json-lines", ".ndjson"):
        path = tmp_path / f"test{suffix}"
        path.write_text(
            '{"image": "a.png", "labels": ["dog", "dog", "cat"], "extra": 1}\n'
            "\n"
            '{"image": "b.png", "labels": []}\n'
        )
        assert read_label_file(path) == [
            Record(tmp_path / "a.png", ("dog", "cat"), f"{path}:1"),
            Record(tmp_path / "b.png", (), f"{path}:3"),
        ]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"image": "a.png", "labels": ["dog"]', r"test.jsonl:2: not valid JSON"),
        ('{"image": "a.png", "labels": "dog"}', r"test.jsonl:2: got .*expected"),
        ('{"labels": ["dog"]}', r"test.jsonl:2: got .*expected"),
        ('{"image": "a.png", "labels": [""]}', r"test.jsonl:2: got .*non-empty strings"),
    ],
)
def test_jsonl_malformed_rows(tmp_path: Path, line: str, match: str):
    path = tmp_path / "test.jsonl"
    path.write_text('{"image": "ok.png", "labels": ["dog"]}\n' + line + "\n")
    with pytest.raises(ValueError, match=match):
        read_label_file(path)


def test_label_file_missing_or_unknown_suffix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="label file not found: .*nope.csv"):
        read_label_file(tmp_path / "nope.csv")
    path = tmp_path / "labels.txt"
    path.write_text("a.png dog\n")
    with pytest.raises(ValueError, match=r"unknown label-file suffix '.txt'; use one of \['.csv'"):
        read_label_file(path)
