"""The toy VFM shipped in the package: its file matches the model card, loading it by name
reproduces the card's numbers, and its features make OTFusion beat the toy CLIP's prior."""

from __future__ import annotations

import pytest

from ramlico.backbones import CLIPBackbone, TimmBackbone, bundled_weights, list_bundled_weights
from ramlico.backbones.registry import BUNDLED_WEIGHTS_DIR, TOY_CLIP, TOY_VFM
from ramlico.toy.card import file_sha256
from ramlico.toy.evaluation import vision_report
from ramlico.toy.vfm_card import read_card, render_card

# One image of 200 is 0.5 points; another CPU's rounding may flip a borderline image or two.
TOLERANCE = 1.0
CHANCE = 100.0 / 20


@pytest.fixture(scope="module")
def card():
    return read_card(BUNDLED_WEIGHTS_DIR)


def test_file_matches_the_card(card):
    path = bundled_weights(TOY_VFM, "toy")
    assert (TOY_VFM, "toy") in list_bundled_weights()
    assert path.name == card["file"] and path.stat().st_size == card["bytes"]
    assert path.stat().st_size <= 10 * 2**20
    assert file_sha256(path) == card["sha256"]
    assert (BUNDLED_WEIGHTS_DIR / "VFM_CARD.md").read_text() == render_card(card)


def test_loading_by_name_reproduces_the_card(card):
    report = vision_report(
        TimmBackbone(TOY_VFM, pretrained="toy"), CLIPBackbone(TOY_CLIP, pretrained="toy")
    )
    assert set(report) == set(card["features"])
    for key, value in card["features"].items():
        assert report[key] == pytest.approx(value, abs=TOLERANCE), key


def test_its_features_group_the_classes_and_lift_otfusion(card):
    ft = card["features"]
    assert ft["easy_ncm_top1"] >= 18 * CHANCE  # >= 90 %
    assert ft["hard_ncm_top1"] >= 16 * CHANCE  # >= 80 %: grouped despite the distractors
    assert ft["hard_otfusion_top1"] > ft["hard_clip_top1"]
