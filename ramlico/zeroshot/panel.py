"""PNG explanation panels for LaZSL predictions (paper Fig. 4 style), drawn with PIL only.

Left: the image with the boxes of the crops that carried the most transport-weighted similarity
(``rho_i``), numbered by rank. Right: the top descriptors of the predicted class as horizontal
bars of their contribution ``w_j = sum_i T_ij S*_ij`` with the value printed (docs/zero_shot.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = ["PANEL_SIZE", "explanation_panel", "to_uint8_image"]

Tensor = torch.Tensor
IMAGE_SIDE = 256
PANEL_SIZE = (IMAGE_SIDE + 520, IMAGE_SIDE + 40)  # (width, height) in pixels
_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180))


def to_uint8_image(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Image.Image:
    """Undo the normalisation of a ``(3, H, W)`` model input and return an RGB PIL image."""
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    pixels = (image.detach().float().cpu() * s + m).clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(pixels.permute(1, 2, 0).numpy(), mode="RGB")


def _clip_text(text: str, limit: int = 58) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def explanation_panel(
    image: Image.Image,
    boxes: Sequence[Sequence[int]],
    descriptors: Sequence[str],
    contributions: Sequence[float],
    title: str,
) -> Image.Image:
    """Draw one explanation panel of size :data:`PANEL_SIZE`.

    Args:
        image: the (un-normalised) image the boxes refer to, any size.
        boxes: top crops as ``(x1, y1, x2, y2)`` in ``image`` pixels, most important first.
        descriptors: descriptor sentences, most important first.
        contributions: their contributions ``w_j`` (same length as ``descriptors``).
        title: header text (e.g. ``"#3 pred: tench (psi 0.312)"``).

    Returns:
        an RGB image of size :data:`PANEL_SIZE`.
    """
    if len(descriptors) != len(contributions):
        raise ValueError(
            f"descriptors ({len(descriptors)}) and contributions ({len(contributions)}) differ"
        )
    panel = Image.new("RGB", PANEL_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default()
    draw.text((8, 8), _clip_text(title, 110), fill=(0, 0, 0), font=font)
    sx, sy = IMAGE_SIDE / image.width, IMAGE_SIDE / image.height
    panel.paste(image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE)), (0, 32))
    for rank, (x1, y1, x2, y2) in reversed(list(enumerate(boxes))):
        colour = _COLOURS[rank % len(_COLOURS)]
        xy = (x1 * sx, 32 + y1 * sy, max(x1 * sx, x2 * sx - 1), 32 + max(y1 * sy, y2 * sy - 1))
        draw.rectangle(xy, outline=colour, width=2)
        draw.text((xy[0] + 3, xy[1] + 2), str(rank + 1), fill=colour, font=font)
    left, top, bar_max = IMAGE_SIDE + 16, 40, PANEL_SIZE[0] - IMAGE_SIDE - 100
    peak = max((abs(c) for c in contributions), default=1.0) or 1.0
    row = (PANEL_SIZE[1] - top - 8) / max(len(descriptors), 1)
    for j, (text, value) in enumerate(zip(descriptors, contributions, strict=True)):
        y = top + j * row
        draw.text((left, y), _clip_text(text), fill=(0, 0, 0), font=font)
        length = max(1.0, bar_max * abs(value) / peak)
        draw.rectangle((left, y + 16, left + length, y + 28), fill=(70, 110, 200))
        draw.text((left + length + 6, y + 16), f"{value:.4f}", fill=(0, 0, 0), font=font)
    return panel
