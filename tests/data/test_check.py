"""ramlico.data.check: images, encodings, empty label cells, duplicates; found before training."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import ramlico.data.check as check
from ramlico.data.check import DataCheckError, check_images, check_records, image_error
from ramlico.data.datamodule import MultiLabelDataModule
from ramlico.data.records import Record, read_label_file

ROOT = Path(__file__).resolve().parents[2]


def _jpeg(path: Path, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.effect_noise((size, size), 40).convert("RGB").save(path, quality=90)
    return path


def _custom(tmp_path: Path, png, train_rows: str, test_rows: str = "c.png,dog\n") -> dict:
    for name in "abcd":
        png(tmp_path / f"{name}.png")
    (tmp_path / "train.csv").write_text("image,labels\n" + train_rows)
    (tmp_path / "test.csv").write_text("image,labels\n" + test_rows)
    return dict(
        source="custom", root=str(tmp_path), train_file=str(tmp_path / "train.csv"),
        test_file=str(tmp_path / "test.csv"), image_size=8, batch_size=2,
    )  # fmt: skip


# ---------------------------------------------------------------- images
def test_image_error_decodes_the_whole_file(tmp_path: Path):
    good = _jpeg(tmp_path / "good.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert image_error(good) is None
    # a truncated JPEG still opens (its header is intact) but fails when decoded
    with Image.open(truncated) as im:
        assert im.size == (64, 64)
    assert image_error(truncated).startswith("unreadable (OSError")
    assert image_error(garbage).startswith("unreadable (")
    assert image_error(tmp_path / "nope.jpg") == "missing"


def test_check_images_caches_results_until_the_file_changes(tmp_path: Path, monkeypatch):
    paths = [_jpeg(tmp_path / f"{i}.jpg") for i in range(4)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    calls: list[Path] = []
    real = check.image_error
    monkeypatch.setattr(check, "image_error", lambda p: calls.append(p) or real(p))
    first = check_images([*paths, bad, tmp_path / "missing.jpg"], cache_key="k", progress=False)
    assert (
        set(first) == {bad, tmp_path / "missing.jpg"}
        and first[tmp_path / "missing.jpg"] == "missing"
    )
    assert len(calls) == 5  # a missing file is never decoded
    calls.clear()
    second = check_images([*paths, bad, tmp_path / "missing.jpg"], cache_key="k", progress=False)
    assert second == first and calls == []  # everything from the cache
    _jpeg(bad)  # the bad file is replaced by a good one: size / mtime change, decoded again
    third = check_images([*paths, bad], cache_key="k", progress=False)
    assert third == {} and calls == [bad]


# ---------------------------------------------------------------- label files
def test_utf8_bom_csv_is_read(tmp_path: Path):
    file = tmp_path / "excel.csv"
    file.write_bytes("image,labels\r\nä.png,café|dog\r\n".encode("utf-8-sig"))
    records = read_label_file(file)
    assert records == [Record(tmp_path / "ä.png", ("café", "dog"), f"{file}:2")]


def test_latin1_csv_names_file_line_and_encoding(tmp_path: Path):
    file = tmp_path / "latin.csv"
    file.write_bytes("image,labels\na.png,dog\nb.png,café\n".encode("latin-1"))
    with pytest.raises(
        ValueError,
        match=r"latin.csv:3: not UTF-8 \(byte 0xe9 at column 10; it "
        r"looks like Latin-1 / Windows-1252\).*iconv -f cp1252 -t utf-8",
    ):
        read_label_file(file)
    utf16 = tmp_path / "u16.csv"
    utf16.write_text("image,labels\n", encoding="utf-16")
    with pytest.raises(ValueError, match=r"u16.csv:1: the file is UTF-16"):
        read_label_file(utf16)


def test_empty_label_cells_are_named(tmp_path: Path, png):
    args = _custom(tmp_path, png, "a.png,dog\nb.png,\nd.png,cat\n")
    dm = MultiLabelDataModule(**args)
    with pytest.raises(
        DataCheckError,
        match=r"train: 1 rows have an empty label cell: "
        r".*train.csv:3\. .*data.allow_empty_labels=true",
    ):
        dm.setup("fit")
    dm = MultiLabelDataModule(**args, allow_empty_labels=True)
    dm.setup("fit")
    assert len(dm.train_dataset) == 3 and dm.train_dataset.n_no_label == 1


def test_duplicate_rows(tmp_path: Path, png, caplog):
    args = _custom(tmp_path, png, "a.png,dog|cat\nb.png,cat\na.png,cat|dog\n")
    dm = MultiLabelDataModule(**args)
    dm.setup("fit")
    assert [r.image.name for r in dm.train_dataset.records] == ["a.png", "b.png"]
    assert "train: dropped 1 duplicate rows (same image and labels): " in caplog.text
    assert "train.csv:4 repeats " in caplog.text and "train.csv:2" in caplog.text
    args = _custom(tmp_path, png, "a.png,dog\nb.png,cat\na.png,cat\n")
    with pytest.raises(
        DataCheckError,
        match=r"listed twice with different labels: .*train.csv:2 "
        r"\['dog'\] vs .*train.csv:4 \['cat'\]",
    ):
        MultiLabelDataModule(**args).setup("fit")


def test_images_shared_between_splits_warn(tmp_path: Path, png, caplog):
    args = _custom(tmp_path, png, "a.png,dog\nb.png,cat\n", test_rows="a.png,dog\nc.png,cat\n")
    MultiLabelDataModule(**args).setup("fit")
    assert "train and test share 1 images (results on test are optimistic)" in caplog.text


def test_corrupt_image_is_found_before_training_starts(tmp_path: Path, png):
    args = _custom(tmp_path, png, "a.png,dog\nb.png,cat\nd.png,dog\n", "c.png,dog\ngone.png,cat\n")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dm = MultiLabelDataModule(**args)
    with pytest.raises(DataCheckError) as err:
        dm.setup("fit")  # the Trainer calls setup before the first training step
    text = str(err.value)
    assert (
        "train: 1 of 3 images are missing or unreadable: " in text and "b.png (unreadable" in text
    )
    assert (
        "test: 1 of 2 images are missing or unreadable: " in text and "gone.png (missing)" in text
    )
    assert "data.skip_bad_images=true" in text and "data.image_root" in text
    dm = MultiLabelDataModule(**args, skip_bad_images=True)
    dm.setup("fit")
    assert [r.image.name for r in dm.train_dataset.records] == ["a.png", "d.png"]
    assert [r.image.name for r in dm.test_datasets["seen"].records] == ["c.png"]


def test_check_images_false_defers_to_loading(tmp_path: Path, png):
    args = _custom(tmp_path, png, "a.png,dog\nb.png,cat\n")
    (tmp_path / "b.png").write_bytes(b"broken")
    dm = MultiLabelDataModule(**args, check_images=False)
    dm.setup("fit")  # not decoded up front
    with pytest.raises(OSError, match=r"cannot read image .*b.png .*data.skip_bad_images=true"):
        dm.train_dataset[1]


def test_check_records_report_lines(tmp_path: Path, png):
    png(tmp_path / "a.png")
    records = [
        Record(tmp_path / "a.png", ("dog",), "f.csv:2"),
        Record(tmp_path / "a.png", ("dog",), "f.csv:3"),
    ]
    report = check_records("train", records, cache_key=None, progress=False)
    assert report.errors() == []
    assert report.summary() == "train: 2 rows, 1 used, 1 duplicates dropped"


# ---------------------------------------------------------------- command
def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ramlico.data.check", *args], cwd=cwd, capture_output=True,
        text=True, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_command_checks_a_config_and_reports_every_problem(tmp_path: Path, png):
    _custom(tmp_path, png, "a.png,dog\nb.png,\nb.png,cat\n", "c.png,dog\nmissing.png,cat\n")
    bad = _run("experiment=ram_custom", f"data.root={tmp_path}", cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    out = bad.stdout
    assert "train: 3 rows, 2 used" in out and "test: 2 rows, 2 used, 1 bad images" in out
    assert "listed twice with different labels" in out and "missing.png (missing)" in out
    assert "3 problem(s) found" in out  # empty cell, conflict, missing image
    (tmp_path / "train.csv").write_text("image,labels\na.png,dog\nb.png,cat\n")
    (tmp_path / "test.csv").write_text("image,labels\nc.png,dog\nd.png,cat\n")
    good = _run("experiment=ram_custom", f"data.root={tmp_path}", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok: no problems found" in good.stdout


def test_command_checks_label_files(tmp_path: Path, png):
    png(tmp_path / "img" / "a.png")
    file = tmp_path / "labels.jsonl"
    file.write_text(json.dumps({"image": "a.png", "labels": []}) + "\n")
    result = _run(str(file), "--image-root", str(tmp_path / "img"), cwd=tmp_path)
    assert result.returncode == 1
    assert "labels.jsonl: 1 rows have an empty label cell: " in result.stdout
    latin = tmp_path / "latin.csv"
    latin.write_bytes("image,labels\na.png,caf\xe9\n".encode("latin-1"))
    result = _run(str(latin), cwd=tmp_path)
    assert result.returncode == 1 and "latin.csv:2: not UTF-8" in result.stderr


def test_progress_and_timing_are_logged(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="ramlico.data.check")
    paths = [_jpeg(tmp_path / f"{i}.jpg") for i in range(3)]
    check_images(paths, cache_key=None, progress=True, desc="checking x images")
    assert "checking x images: 3 images, 3 decoded in" in caplog.text
