"""End to end on generated data with the tiny CLIP: train, lean checkpoints, resume, evaluate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, shrink
from omegaconf import open_dict

from ramlico.cli import evaluate, train
from ramlico.cli.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = shrink(compose_cfg("train", tmp, ["experiment=clip_adapter_demo"]), tmp / "gen")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 2
        cfg.logger = None
    metrics, objects = train(cfg)
    return tmp, cfg, metrics, objects


def test_training_lowers_the_loss_and_tests_both_splits(trained):
    _, _, metrics, objects = trained
    for split in ("zsl", "gzsl"):
        for name in ("P@3", "R@3", "F1@3", "mAP"):
            assert 0.0 <= metrics[f"test/{split}/{name}"] <= 100.0
    assert metrics["train/loss"] < 0.69  # BCE at init is log 2 = 0.693 (zero bias)


def test_checkpoint_holds_only_trainable_weights_config_and_labels(trained):
    tmp, cfg, _, objects = trained
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    keys = set(ckpt["state_dict"])
    assert keys == {
        "adapter.mlp.0.weight", "adapter.mlp.0.bias", "adapter.mlp.2.weight",
        "adapter.mlp.2.bias", "log_scale", "bias",
    }  # fmt: skip
    assert not any(k.startswith("backbone.") for k in keys)
    assert ckpt["ramlico"]["config"]["model"]["_target_"] == "ramlico.methods.CLIPAdapter"
    model = objects["model"]
    assert ckpt["ramlico"]["label_names"]["zsl"] == model.label_names["zsl"]
    assert len(ckpt["ramlico"]["label_names"]["train"]) == 15
    for k, v in ckpt["state_dict"].items():  # the saved weights are the trained ones
        torch.testing.assert_close(v, model.state_dict()[k])


def test_evaluate_restores_from_the_checkpoint_alone(trained):
    tmp, cfg, metrics, _ = trained
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    # The eval config names another model (zero-shot): the checkpoint's config must win.
    ecfg = shrink(compose_cfg("eval", tmp / "e", [f"ckpt_path={ckpt}"]), tmp / "gen")
    with open_dict(ecfg):
        ecfg.data.image_size = 64
        ecfg.logger = None
    emetrics, objects = evaluate(ecfg)
    assert type(objects["model"]).__name__ == "CLIPAdapter"
    for key in ("test/zsl/F1@3", "test/gzsl/mAP", "test/gzsl/P@5"):
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4)


def test_resume_continues_from_the_last_checkpoint(trained, tmp_path):
    tmp, cfg, _, objects = trained
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    steps_done = torch.load(ckpt, weights_only=True)["global_step"]
    rcfg = shrink(compose_cfg("train", tmp_path, ["experiment=clip_adapter_demo"]), tmp / "gen")
    with open_dict(rcfg):
        rcfg.trainer.max_epochs = 3
        rcfg.ckpt_path = str(ckpt)
        rcfg.test = False
        rcfg.logger = None
    _, robjects = train(rcfg)
    trainer = robjects["trainer"]
    assert trainer.current_epoch == 3
    assert trainer.global_step == steps_done * 3 // 2  # one more epoch of the same length


def test_train_refuses_eval_only_methods(tmp_path):
    cfg = compose_cfg("train", tmp_path, ["experiment=clip_zeroshot_demo"])
    with pytest.raises(ValueError, match="training-free.*python evaluate.py"):
        train(cfg)


def test_evaluate_of_a_trained_method_needs_a_checkpoint(tmp_path):
    cfg = compose_cfg("eval", tmp_path, ["experiment=clip_adapter_demo"])
    with pytest.raises(ValueError, match="ckpt_path="):
        evaluate(cfg)


def test_cli_help_lists_experiments():
    out = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "experiment: " in out and "clip_adapter_demo" in out and "clip_zeroshot_demo" in out
