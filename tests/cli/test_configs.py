"""Every experiment composes and instantiates; misspelt keys fail with a message."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from helpers import CONFIG_DIR, compose_cfg
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig

EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("root", ["train", "eval"])
def test_experiment_composes_with_its_targets_importable(name, root, tmp_path):
    cfg = compose_cfg(root, tmp_path, [f"experiment={name}"])
    targets = []

    def walk(node):
        if isinstance(node, DictConfig):
            if "_target_" in node:
                targets.append(node._target_)
            for key in node:
                walk(node._get_node(key))

    for group in ("data", "model", "trainer", "callbacks", "logger"):
        walk(cfg[group])
    assert {"ramlico.backbones.CLIPBackbone", "lightning.pytorch.Trainer"} <= set(targets)
    for target in targets:
        hydra.utils.get_object(target)  # raises if the target does not exist


DEMOS = [
    "ram_demo",
    "clip_zeroshot_demo",
    "clip_adapter_demo",
    "lazsl_demo",
    "otfusion_demo",
    "lico_demo",
]


@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_runs_on_the_shipped_toy_clip(name, tmp_path):
    cfg = compose_cfg("train", tmp_path, [f"experiment={name}"])
    model = cfg.model
    clip = model.get("backbone") or model.get("clip") or model.get("text_encoder")
    assert (clip.model_name, clip.pretrained) == ("ramlico-toy-ViT", "toy")  # offline, bundled
    assert cfg.data.source == "generated"
    if name in ("lazsl_demo", "otfusion_demo"):
        assert cfg.data.generated.hard  # the single-label set with distractors and clutter
    if name == "otfusion_demo":
        assert (model.dino.model_name, model.dino.pretrained) == ("regnetx_002", "toy")
    if name == "lazsl_demo":
        assert model.descriptors_file == "generated_shapes"


def test_misspelt_key_fails_with_its_name(tmp_path):
    with pytest.raises(ConfigCompositionException, match="trainer.max_epoch"):
        compose_cfg("train", tmp_path, ["trainer.max_epoch=3"])


def test_unknown_experiment_lists_the_options(tmp_path):
    with pytest.raises(ConfigCompositionException, match="clip_adapter_demo"):
        compose_cfg("train", tmp_path, ["experiment=ram_cocoo"])
