"""Your images in, model inputs out: find files, open any size and mode, batch them.

``load_image`` gives an upright RGB PIL image from a path, a PIL image, a ``(H, W[, C])`` uint8
array or a ``(3, H, W)`` tensor in [0, 1]:

* EXIF orientation is applied (phone photos come out upright);
* transparency (RGBA, LA, palette with a transparent colour) is composited onto white;
* grey (L, 1), 16/32-bit grey (I;16, I, F: scaled by the image's own maximum) and CMYK/YCbCr
  become RGB.

``find_images`` expands a folder (its image files, sorted; ``recursive`` for subfolders), a glob
pattern, a single file, or a list of any of these. Extensions are matched case-insensitively.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ramlico.data.image_folder import IMAGE_SUFFIXES, is_image

__all__ = ["ImageFiles", "ImageSource", "find_images", "load_image"]

ImageSource = str | Path | Image.Image | np.ndarray | torch.Tensor
_WHITE = (255, 255, 255)


def _to_rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = values.max() if values.size and values.max() > 0 else 1.0
        image = Image.fromarray((255 * np.clip(values / peak, 0, 1)).round().astype(np.uint8))
    return image.convert("RGB")


def load_image(source: ImageSource) -> Image.Image:
    """An upright RGB PIL image from a file path, PIL image, array or tensor (see module doc).

    Raises:
        FileNotFoundError: no such file. OSError: the file is not a readable image (named).
        TypeError / ValueError: an unsupported object or array shape.
    """
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, torch.Tensor):
        if source.dim() != 3 or source.shape[0] not in (1, 3):
            raise ValueError(f"a tensor image is (3, H, W) or (1, H, W), got {tuple(source.shape)}")
        pixels = source.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
        source = pixels.expand(3, -1, -1).permute(1, 2, 0).numpy()
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or (source.ndim == 3 and source.shape[2] not in (1, 3, 4)):
            raise ValueError(f"an array image is (H, W) or (H, W, 1|3|4), got {source.shape}")
        if source.dtype != np.uint8:
            raise ValueError(f"an array image must be uint8, got {source.dtype}")
        return _to_rgb(Image.fromarray(source.squeeze(2) if source.ndim == 3 and
                                       source.shape[2] == 1 else source))  # fmt: skip
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"cannot read an image from {type(source).__name__}; pass a path, a PIL image, a "
            "uint8 array (H, W[, C]) or a (3, H, W) tensor in [0, 1]"
        )
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return _to_rgb(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise OSError(f"cannot read image {path}: {err}; is it an image file?") from err


def _is_image(path: Path) -> bool:
    return path.is_file() and is_image(path)


def find_images(inputs: str | Path | Sequence[str | Path], recursive: bool = False) -> list[Path]:
    """Image files named by a folder, a glob pattern, a file, or a list of these (in order).

    Raises:
        FileNotFoundError: an entry matches no image (named, with the accepted extensions).
    """
    entries = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not entries:
        raise FileNotFoundError(
            "no inputs given; pass inputs=DIR, a glob such as 'imgs/*.jpg', or files"
        )
    found: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            matches = sorted(p for p in path.glob(pattern) if _is_image(p))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(str(entry), recursive=True))
            matches = [p for p in matches if _is_image(p)]
        if not matches:
            raise FileNotFoundError(
                f"no image found for input {str(entry)!r} (a folder, a glob pattern or a file; "
                f"extensions {sorted(IMAGE_SUFFIXES)}, any case)"
            )
        found.extend(matches)
    return found


class ImageFiles(Dataset[tuple[torch.Tensor, int]]):
    """Images to tag: ``(transform(load_image(source)), index)`` per item.

    Args:
        sources: paths (or in-memory images) in output order.
        transform: RGB PIL image -> ``(3, S, S)`` model input (the model's eval transform).
    """

    def __init__(self, sources: Sequence[ImageSource], transform: Callable[[Image.Image], Any]):
        self.sources = list(sources)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(load_image(self.sources[index])), index

    def name(self, index: int) -> str:
        """The path of item ``index`` (or ``"image_<index>"`` for in-memory images)."""
        source = self.sources[index]
        return str(source) if isinstance(source, (str, Path)) else f"image_{index:05d}"
