"""Region evidence pictures: grid layout, resizing, peak and box in image pixels, overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ramlico.explain.heatmaps import (
    heatmap_box,
    heatmap_overlay,
    heatmap_peak,
    patch_grid,
    resize_heatmap,
)


def test_patch_grid_is_row_major_per_label():
    values = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # (B, N, C)
    grid = patch_grid(values)
    assert grid.shape == (2, 3, 2, 2)
    # patch n of label c sits at row n // 2, column n % 2
    assert grid[1, 2, 1, 0] == values[1, 2, 2]
    with pytest.raises(ValueError, match="square"):
        patch_grid(torch.zeros(1, 5, 2))


def test_peak_and_box_are_in_original_image_pixels():
    grid = np.zeros((4, 4))
    grid[1, 3] = 1.0
    grid[2, 3] = 0.6
    # a 200 x 100 image: cells are 50 x 25 px; the peak cell (row 1, col 3) centres at (175, 37.5)
    assert heatmap_peak(grid, (200, 100)) == (175.0, 37.5)
    assert heatmap_box(grid, (200, 100)) == (150.0, 25.0, 200.0, 75.0)


def test_resize_is_min_max_scaled_and_overlay_keeps_the_image_size():
    grid = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    up = resize_heatmap(grid, (30, 20))
    assert up.shape == (20, 30) and up.min() == 0.0 and up.max() == pytest.approx(1.0)
    assert up[0, 0] < up[-1, -1]
    assert not resize_heatmap(torch.ones(2, 2), (3, 3)).any()
    image = Image.new("RGBA", (30, 20), (0, 0, 0, 255))
    out = heatmap_overlay(image, grid, alpha=1.0)
    assert out.size == (30, 20) and out.mode == "RGB"
    # jet: low evidence (top-left) is blue, high (bottom-right) red
    r0, _, b0 = out.getpixel((0, 0))
    r1, _, b1 = out.getpixel((29, 19))
    assert b0 > r0 and r1 > b1
