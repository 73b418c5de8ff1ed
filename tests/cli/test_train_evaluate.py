"""End to end on generated data with the tiny CLIP: train, lean checkpoints, resume, evaluate."""

from __future__ import annotations

import json
import shutil
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
    # the best checkpoint (selected on val/seen/mAP, then tested) holds the weights that were tested
    best = load_checkpoint(objects["trainer"].checkpoint_callback.best_model_path)
    for k, v in best["state_dict"].items():
        torch.testing.assert_close(v, model.state_dict()[k])


def test_evaluate_restores_from_the_checkpoint_alone(trained):
    tmp, cfg, metrics, objects = trained
    ckpt = objects["trainer"].checkpoint_callback.best_model_path  # the checkpoint train() tested
    # `python evaluate.py ckpt_path=...` and nothing else: the eval config's defaults name another
    # model (zero-shot CLIP) and other data (generated, 224 px, root ./data): the checkpoint wins
    ecfg = compose_cfg("eval", tmp / "e", [f"ckpt_path={ckpt}"])
    with open_dict(ecfg):
        ecfg.logger = None
        ecfg.callbacks = None
        ecfg.trainer.enable_progress_bar = False
    emetrics, objects = evaluate(ecfg, overrides=[f"ckpt_path={ckpt}"])
    data = objects["cfg"].data
    assert (data.image_size, data.root) == (64, cfg.data.root)
    assert data.generated == cfg.data.generated
    assert type(objects["model"]).__name__ == "CLIPAdapter"
    for key in ("test/zsl/F1@3", "test/gzsl/mAP", "test/gzsl/P@5"):
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4)


def test_resume_continues_from_the_last_checkpoint_in_its_own_folder(trained, tmp_path):
    tmp, cfg, _, objects = trained
    run = tmp_path / "run"
    shutil.copytree(cfg.paths.output_dir, run)  # resuming writes into the run's folder
    ckpt = run / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    steps_done = saved["global_step"]
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
    # the resumed run wrote to the original folder; this session's folder links to it
    session = Path(rcfg.paths.output_dir)  # now the original folder
    assert session == run
    assert torch.load(ckpt, weights_only=True)["epoch"] == saved["epoch"] + 1  # one more epoch
    link = tmp_path / "out" / "resumed_run"
    assert link.is_symlink() and link.resolve() == run.resolve()
    assert "resumed from last.ckpt" in (run / "resumes.log").read_text()
    assert json.loads((run / "metrics.json").read_text())["metrics"]["train/loss"] > 0


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
