"""ramlico.metrics.regions: masks from object geometry, pointing game, evidence mass."""

from __future__ import annotations

import pytest
import torch

from ramlico.metrics.regions import (
    RegionEvidence,
    evidence_mass,
    object_masks,
    pointing_game,
    region_scores,
    uniform_heatmaps,
)

NAMES = ["red circle", "blue star"]
# one 64 px image: a red circle centred in the top-left quadrant, a distractor elsewhere
OBJECTS = [[{"label": "red circle", "center": [16.0, 16.0], "radius": 12.0},
            {"label": "purple ring", "center": [48.0, 48.0], "radius": 12.0}]]  # fmt: skip


def test_masks_mark_cells_whose_centre_is_in_the_disc():
    m = object_masks(OBJECTS, NAMES, grid=(4, 4), image_size=64)
    assert m.shape == (1, 2, 4, 4)
    # 16 px cells, centres at 8, 24, 40, 56: distance from (16, 16) to (8, 8) and (24, 24) is
    # 11.3 <= 12, to (40, 8) is 25.3 > 12 -> exactly the top-left 2 x 2 block
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(m[0, 0], expected)
    assert not m[0, 1].any()  # no blue star; the purple ring is not a label
    # a tolerance of 14 px reaches (40, 8): distance 25.3 <= 26
    assert object_masks(OBJECTS, NAMES, (4, 4), 64, tolerance=14.0)[0, 0, 0, 2]


def test_pointing_game_counts_hits_and_ties_fractionally():
    masks = object_masks(OBJECTS, NAMES, (4, 4), 64)
    heat = torch.zeros(1, 2, 4, 4)
    heat[0, 0, 1, 1] = 1.0  # arg-max inside the red circle
    assert pointing_game(heat, masks).tolist() == [1.0]  # one present pair (the red circle)
    heat[0, 0, 3, 3] = 2.0  # arg-max on the distractor
    assert pointing_game(heat, masks).tolist() == [0.0]
    heat[0, 0, 0, 0] = 2.0  # tie between one inside and one outside cell -> 1/2
    assert pointing_game(heat, masks).tolist() == [0.5]
    # the uniform map: 4 of 16 cells inside -> 0.25 for both metrics
    uni = uniform_heatmaps(1, 2, (4, 4))
    assert pointing_game(uni, masks).tolist() == [0.25]
    assert evidence_mass(uni, masks).tolist() == [0.25]


def test_evidence_mass_is_the_share_inside():
    masks = object_masks(OBJECTS, NAMES, (4, 4), 64)
    heat = torch.zeros(1, 2, 4, 4)
    heat[0, 0, 0, 0], heat[0, 0, 3, 3] = 3.0, 1.0  # 3 of 4 units inside
    assert evidence_mass(heat, masks).tolist() == [0.75]
    assert evidence_mass(torch.zeros(1, 2, 4, 4), masks).tolist() == [0.25]  # empty = uniform
    with pytest.raises(ValueError, match="non-negative"):
        evidence_mass(heat - 1.0, masks)
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        evidence_mass(heat[0], masks)


def test_streaming_metric_equals_the_batch_means():
    second = [{"label": "blue star", "center": [40.0, 40.0], "radius": 20.0},
              {"label": "red circle", "center": [16.0, 48.0], "radius": 10.0}]  # fmt: skip
    objs = [*OBJECTS, second]
    masks = object_masks(objs, NAMES, (8, 8), 64)
    heat = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    metric = RegionEvidence()
    metric.update(heat[:1], masks[:1])
    metric.update(heat[1:], masks[1:])
    out = metric.compute()
    ref = region_scores(heat, masks)
    assert ref["pairs"] == 3
    torch.testing.assert_close(float(out["pointing"]), ref["pointing"])
    torch.testing.assert_close(float(out["mass"]), ref["mass"])
