"""The toy CLIP shipped in the package: its file matches the model card, and loading it by name
reproduces the card's zero-shot accuracy, which is far above chance on every label."""

from __future__ import annotations

import pytest

from ramlico.backbones import CLIPBackbone, bundled_weights, list_bundled_weights
from ramlico.backbones.registry import BUNDLED_WEIGHTS_DIR, TOY_CLIP
from ramlico.toy.card import file_sha256, read_card, render_card
from ramlico.toy.evaluation import zero_shot_report

# One image of 200 is 0.5 points; another CPU's rounding may flip a borderline image or two.
TOLERANCE = 1.0
CHANCE = 100.0 / 20


@pytest.fixture(scope="module")
def card():
    return read_card(BUNDLED_WEIGHTS_DIR)


@pytest.fixture(scope="module")
def toy_clip():
    return CLIPBackbone(TOY_CLIP, pretrained="toy")


def test_file_matches_the_card(card):
    path = bundled_weights(TOY_CLIP, "toy")
    assert (TOY_CLIP, "toy") in list_bundled_weights()
    assert path.name == card["file"] and path.stat().st_size == card["bytes"]
    assert path.stat().st_size <= 10 * 2**20
    assert file_sha256(path) == card["sha256"]
    # the markdown card is rendered from the same data
    assert (BUNDLED_WEIGHTS_DIR / "MODEL_CARD.md").read_text() == render_card(card)


def test_loading_by_name_reproduces_the_card(card, toy_clip):
    report = zero_shot_report(toy_clip)
    for key in (
        "easy_top1",
        "hard_top1",
        "multilabel_mAP",
        "multilabel_patch_mAP",
        "multilabel_saa_mAP",
    ):
        assert report[key] == pytest.approx(card["zero_shot"][key], abs=TOLERANCE), key
    # the worst label has 10 images: one flipped image moves it by 10 points
    assert report["easy_top1_min_class"] == pytest.approx(
        card["zero_shot"]["easy_top1_min_class"], abs=10
    )


def test_far_above_chance_on_all_20_labels(card):
    per_class = card["zero_shot"]["easy_top1_per_class"]
    assert len(per_class) == 20
    assert min(per_class.values()) >= 10 * CHANCE  # every label: >= 50 % (chance 5 %)
    assert card["zero_shot"]["easy_top1"] >= 16 * CHANCE  # >= 80 % overall


def test_unknown_tag_of_a_bundled_model_is_not_bundled():
    assert bundled_weights(TOY_CLIP, "openai") is None
    assert bundled_weights("ViT-B-16", "toy") is None
