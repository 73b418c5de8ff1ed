"""Image loading (EXIF, modes, arrays, tensors) and input discovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ramlico.predict.images import find_images, load_image


def _marked(w: int = 40, h: int = 20) -> Image.Image:
    """Grey image with a red top-left corner pixel block (to see rotations)."""
    a = np.full((h, w, 3), 128, np.uint8)
    a[:4, :4] = (255, 0, 0)
    return Image.fromarray(a)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    _marked().save(path, exif=exif.tobytes(), quality=100)
    img = load_image(path)
    assert img.size == (20, 40) and img.mode == "RGB"  # upright: width and height swap
    r, g, b = img.getpixel((18, 1))  # the red corner moves to the top right
    assert r > 200 and g < 60 and b < 60


def test_transparency_is_composited_on_white_and_grey_becomes_rgb(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half transparent
    img = load_image(Image.fromarray(rgba, "RGBA"))
    assert img.getpixel((0, 0)) == (255, 0, 0) and img.getpixel((0, 7)) == (255, 255, 255)
    grey = load_image(Image.fromarray(np.full((5, 6), 77, np.uint8), "L"))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (77, 77, 77)
    deep = Image.fromarray(np.array([[0, 1000], [2000, 4000]], np.uint16))
    assert deep.mode.startswith("I")
    px = load_image(deep)
    # scaled by the maximum: 1000 -> 64, 2000 -> 128, 4000 -> 255 (x, y order in getpixel)
    assert px.getpixel((1, 1)) == (255,) * 3 and px.getpixel((0, 1)) == (128,) * 3
    assert px.getpixel((1, 0)) == (64,) * 3
    palette = Image.fromarray(rgba, "RGBA").convert("P")
    assert load_image(palette).mode == "RGB"


def test_arrays_and_tensors_are_images_too():
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[..., 2] = 200
    assert load_image(arr).getpixel((5, 3)) == (0, 0, 200)
    t = torch.zeros(3, 4, 6)
    t[1] = 1.0
    assert load_image(t).getpixel((0, 0)) == (0, 255, 0)
    with pytest.raises(ValueError, match="uint8"):
        load_image(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="cannot read an image from int"):
        load_image(3)


def test_unreadable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(OSError, match="broken.png"):
        load_image(bad)
    with pytest.raises(FileNotFoundError, match="nothere.jpg"):
        load_image(tmp_path / "nothere.jpg")


def test_find_images_by_folder_glob_and_file(tmp_path):
    for name in ("b.PNG", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jpeg").write_bytes(b"x")
    assert [p.name for p in find_images(tmp_path)] == ["a.jpg", "b.PNG"]  # any case, sorted
    assert [p.name for p in find_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "c.jpeg"]
    assert [p.name for p in find_images(str(tmp_path / "*.jpg"))] == ["a.jpg"]
    assert [p.name for p in find_images([tmp_path / "b.PNG", tmp_path / "a.jpg"])] == [
        "b.PNG", "a.jpg",
    ]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no image found for input .*missing"):
        find_images(str(tmp_path / "missing" / "*.jpg"))
