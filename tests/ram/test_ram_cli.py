"""RAM end to end with the CLI functions: lean checkpoint, evaluate from it, fine-tune init."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.cli import evaluate, train  # noqa: E402
from ramlico.cli.checkpoint import (  # noqa: E402
    CheckpointMismatch,
    load_checkpoint,
    load_trainable_weights,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ram")
    cfg = shrink(compose_cfg("train", tmp, []), tmp / "gen")  # no experiment = ram_demo
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
        cfg.logger = None
    metrics, objects = train(cfg)
    return tmp, cfg, metrics, objects


def test_no_argument_default_is_ram_demo(trained):
    _, cfg, metrics, objects = trained
    assert cfg.model._target_ == "ramlico.methods.RAM"
    assert type(objects["model"]).__name__ == "RAM"
    assert {"test/zsl/F1@3", "test/gzsl/mAP"} <= set(metrics)


def test_checkpoint_holds_only_the_side_network_prompts_and_temperatures(trained):
    _, cfg, _, objects = trained
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    keys = set(ckpt["state_dict"])
    assert keys and all(k.startswith(("ladder.", "text_prompts.", "tau_")) for k in keys)
    model = objects["model"]
    n_saved = sum(v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k
                  and "num_batches" not in k)  # fmt: skip
    assert n_saved == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert ckpt["ramlico"]["config"]["model"]["_target_"] == "ramlico.methods.RAM"


def test_evaluate_rebuilds_the_frozen_parts_from_the_config(trained):
    tmp, cfg, metrics, objects = trained
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    overrides = [f"ckpt_path={ckpt}", "data.image_size=224"]
    ecfg = shrink(compose_cfg("eval", tmp / "e", overrides), tmp / "gen")
    with open_dict(ecfg):
        ecfg.logger = None
    # the eval defaults (224 px) do not fit the tiny 64 px tower: the checkpoint's size is used,
    # and asking for another one explicitly names both values
    with pytest.raises(
        CheckpointMismatch, match=r"data.image_size=224 differs from the checkpoint's 64"
    ):
        evaluate(ecfg, overrides=overrides)
    emetrics, objects = evaluate(ecfg, overrides=overrides[:1])
    assert type(objects["model"]).__name__ == "RAM"
    for key in ("test/zsl/F1@3", "test/zsl/mAP", "test/gzsl/mAP", "test/gzsl/P@5"):
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4)


def test_init_ckpt_copies_the_trainable_tensors(trained, tmp_path):
    _, cfg, _, objects = trained
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    from hydra.utils import instantiate

    fresh = instantiate(cfg.model, _convert_="all")
    assert load_trainable_weights(fresh, ckpt) == []
    saved = load_checkpoint(ckpt)["state_dict"]
    for k, v in saved.items():
        assert torch.equal(fresh.state_dict()[k], v)
    with open_dict(cfg):
        cfg.model.text_prompt_len = 2
    other = instantiate(cfg.model, _convert_="all")
    with pytest.raises(ValueError, match="shape mismatch text_prompts.prompts.1"):
        load_trainable_weights(other, ckpt)
