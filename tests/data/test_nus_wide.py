"""ramlico.data.nus_wide: seen = TagList1k minus concepts, labels from AllTags1k + Groundtruth.

The fixture folder (tests/data/conftest.py) has 6 tags, 2 of which are concepts, and 3 concepts, one
of which ("tattoo") is not a tag, mirroring the real 1000 - 75 = 925 construction at small scale.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ramlico.data.nus_wide import image_key, read_nus_label_space, read_nus_wide


def test_label_space_from_files(nus_root: Path):
    space = read_nus_label_space(nus_root)
    assert space.seen == ("bravo", "canon", "eos", "nsw")  # 6 tags - {sky, beach}
    assert space.unseen == ("beach", "sky", "tattoo")


def test_train_split_records(nus_root: Path):
    records, space = read_nus_wide(nus_root, "train")
    assert space.gzsl == ("bravo", "canon", "eos", "nsw", "beach", "sky", "tattoo")
    flickr = nus_root / "Flickr"
    assert [r.image for r in records] == [
        flickr / "actor" / "0001_11.jpg",
        flickr / "beach" / "0001_21.jpg",
        flickr / "sky" / "0002_32.jpg",
    ]
    # image 0 has the *tag* "sky" but no sky ground truth: only the seen tag "bravo" remains.
    # image 2: tags beach, eos, canon (beach is a concept column -> from ground truth instead).
    # image 4: tag bravo; ground truth sky and tattoo.
    assert [r.labels for r in records] == [
        ("bravo",),
        ("eos", "canon", "beach"),
        ("bravo", "sky", "tattoo"),
    ]
    assert records[0].source.endswith("Imagelist.txt:1")


def test_test_split_keeps_images_without_labels(nus_root: Path):
    records, _ = read_nus_wide(nus_root, "test")
    assert [r.image.name for r in records] == ["0002_12.jpg", "0001_31.jpg"]
    assert [r.labels for r in records] == [(), ("nsw", "sky")]


def test_alternative_layout_concepts_at_root(nus_root: Path):
    (nus_root / "ConceptsList" / "Concepts81.txt").rename(nus_root / "Concepts81.txt")
    assert read_nus_label_space(nus_root).unseen == ("beach", "sky", "tattoo")


@pytest.mark.parametrize(
    ("missing", "match"),
    [
        ("NUS_WID_Tags/TagList1k.txt", r"tag list \(1000 Flickr tags\) not found; looked for"),
        ("ConceptsList/Concepts81.txt", r"concept list \(81 concepts\) not found"),
        ("NUS_WID_Tags/AllTags1k.txt", r"per-image tag matrix .* not found.*AllTags1k.txt"),
        ("ImageList/Imagelist.txt", r"image list \(all images.*Imagelist.txt"),
        ("ImageList/TestImagelist.txt", r"test image list not found.*TestImagelist.txt"),
        ("Groundtruth/AllLabels/Labels_tattoo.txt", r"concept 'tattoo' not found: .*Labels_tattoo"),
    ],
)
def test_missing_file_is_named(nus_root: Path, missing: str, match: str):
    (nus_root / missing).unlink()
    with pytest.raises(FileNotFoundError, match=match):
        read_nus_wide(nus_root, "test")


def test_inconsistent_files(nus_root: Path):
    (nus_root / "Groundtruth/AllLabels/Labels_sky.txt").write_text("0\n1\n0\n1\n")
    with pytest.raises(ValueError, match=r"Labels_sky.txt: expected 5 values of 0/1 .* got 4"):
        read_nus_wide(nus_root, "train")


def test_short_tag_row(nus_root: Path):
    path = nus_root / "NUS_WID_Tags" / "AllTags1k.txt"
    lines = path.read_text().splitlines()
    lines[2] = "0 0 1 1 0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"AllTags1k.txt:3: 5 values, expected 6"):
        read_nus_wide(nus_root, "train")


def test_split_image_missing_from_imagelist(nus_root: Path):
    (nus_root / "ImageList" / "TrainImagelist.txt").write_text("actor\\0001_11.jpg\nzoo\\9.jpg\n")
    with pytest.raises(
        ValueError, match=r"1 images are not in .*Imagelist.txt, e.g. \['zoo/9.jpg'\]"
    ):
        read_nus_wide(nus_root, "train")


def test_unknown_split(nus_root: Path):
    with pytest.raises(
        ValueError, match=r"unknown NUS-WIDE split 'val'; allowed: \['test', 'train'\]"
    ):
        read_nus_wide(nus_root, "val")  # type: ignore[arg-type]


def test_image_key():
    assert (
        image_key("C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg\r\n")
        == "actor/0001_2124494179.jpg"
    )
    assert image_key("actor\\0001_2124494179.jpg") == "actor/0001_2124494179.jpg"
    assert image_key("Flickr/actor/x.jpg") == "actor/x.jpg"


def test_list_entry_without_folder(nus_root: Path):
    (nus_root / "ImageList" / "TestImagelist.txt").write_text("actor\\0002_12.jpg\n0001_31.jpg\n")
    with pytest.raises(ValueError, match=r"TestImagelist.txt:2: entry '0001_31.jpg' has no"):
        read_nus_wide(nus_root, "test")
