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


def test_demo_experiments_use_the_tiny_offline_backbone(tmp_path):
    for name in ("clip_zeroshot_demo", "clip_adapter_demo"):
        cfg = compose_cfg("train", tmp_path, [f"experiment={name}"])
        assert cfg.model.backbone.model_name == "ramlico-tiny-ViT"
        assert cfg.model.backbone.pretrained is None
        assert cfg.data.source == "generated"


def test_misspelt_key_fails_with_its_name(tmp_path):
    with pytest.raises(ConfigCompositionException, match="trainer.max_epoch"):
        compose_cfg("train", tmp_path, ["trainer.max_epoch=3"])


def test_unknown_experiment_lists_the_options(tmp_path):
    with pytest.raises(ConfigCompositionException, match="clip_adapter_demo"):
        compose_cfg("train", tmp_path, ["experiment=ram_cocoo"])
