"""ramlico.modules.layers: block choices that fit any depth; one override switches the backbone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import open_clip
import pytest
from hydra.utils import instantiate

from ramlico.modules.layers import resolve_layers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg  # noqa: E402


@pytest.mark.parametrize(
    ("spec", "n_blocks", "expected"),
    [
        ("all", 12, tuple(range(12))),
        ("last:3", 12, (9, 10, 11)),  # RAM's COCO recipe on ViT-B/16
        ("last:3", 24, (21, 22, 23)),  # the same choice on ViT-L/14
        ("last:3", 2, (0, 1)),  # a 2-block test tower: every block
        ("first:2", 12, (0, 1)),
        ("none", 12, ()),
        ([-1, 0, 11], 12, (0, 11)),  # negative = from the end; duplicates collapse
        (5, 12, (5,)),
        ([], 12, ()),
    ],
)
def test_resolve_layers(spec, n_blocks, expected):
    assert resolve_layers(spec, n_blocks) == expected


@pytest.mark.parametrize("spec", [[9, 10, 11], [-3], "last", "middle:2", ["a"], [True]])
def test_bad_choices_name_the_key_and_the_valid_values(spec):
    with pytest.raises(
        ValueError,
        match=r"model.tss_layers=.*The tower has 2 blocks: use indices in "
        r"\[-2, 1\] \(negative = from the end\), 'all', or 'last:K'",
    ):
        resolve_layers(spec, 2, "model.tss_layers")


def _deeper_tiny_clip(tmp_path: Path) -> str:
    """A 3-block variant of the tiny ViT, registered with open_clip under a new name."""
    from ramlico.backbones.registry import MODEL_CONFIG_DIR

    cfg = json.loads((MODEL_CONFIG_DIR / "ramlico-tiny-ViT.json").read_text())
    cfg["vision_cfg"]["layers"] = cfg["text_cfg"]["layers"] = 3
    path = tmp_path / "ramlico-tiny3-ViT.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return "ramlico-tiny3-ViT"


def test_one_override_switches_the_backbone_of_ram_custom(tmp_path):
    """ram_custom keeps the model defaults ("all", "last:3"): they fit any depth."""
    name = _deeper_tiny_clip(tmp_path)
    cfg = compose_cfg(
        "train", tmp_path, ["experiment=ram_custom", "model/backbone=clip_tiny"]
    )  # the 2-block tiny tower instead of ViT-B/16: one override
    model = instantiate(cfg.model, _convert_="all")
    assert model.ladder.saa_layers == (0, 1) and model.ladder.tss_layers == (0, 1)
    assert sorted(model.text_prompts.prompts) == ["0", "1"]
    cfg = compose_cfg(
        "train", tmp_path, ["experiment=ram_custom", "model/backbone=clip_tiny",
                            f"model.backbone.model_name={name}"],
    )  # fmt: skip
    model = instantiate(cfg.model, _convert_="all")
    assert model.ladder.saa_layers == (0, 1, 2) and model.ladder.tss_layers == (0, 1, 2)
    assert sorted(model.ladder.visual_prompts) == ["0", "1", "2"]


def test_explicit_indices_that_do_not_fit_fail_before_training(tmp_path):
    cfg = compose_cfg(
        "train", tmp_path, ["experiment=ram_custom", "model/backbone=clip_tiny",
                            "model.tss_layers=[9,10,11]"],
    )  # fmt: skip
    with pytest.raises(
        Exception,
        match=r"model.tss_layers=\[9, 10, 11\]: block 9 is outside the "
        r"tower. The tower has 2 blocks",
    ):
        instantiate(cfg.model, _convert_="all")
