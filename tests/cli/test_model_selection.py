"""Validation split, best checkpoint on a named metric, early stopping, the value for sweeps."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, shrink
from omegaconf import open_dict

from ramlico.cli import train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, overrides=(), epochs: int = 4):
    cfg = shrink(compose_cfg("train", tmp_path, ["experiment=clip_adapter_demo", *overrides]),
                 tmp_path / "gen")  # fmt: skip
    with open_dict(cfg):
        cfg.trainer.max_epochs = epochs
        cfg.data.val_fraction = 0.25
        cfg.logger = {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger",
                              "save_dir": str(tmp_path / "csv"), "name": "m"}}  # fmt: skip
    return cfg


def _val_history(tmp_path, key: str) -> list[float]:
    (file,) = (tmp_path / "csv" / "m").glob("version_*/metrics.csv")
    rows = list(csv.DictReader(file.open()))
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.parametrize("metric", [None, "val/seen/F1@3"])
def test_best_checkpoint_is_the_best_validation_epoch(tmp_path, metric):
    overrides = [f"optimized_metric={metric}"] if metric else []
    metrics, objects = train(_cfg(tmp_path, overrides, epochs=4))
    name = metric or "val/seen/mAP"  # the default for multi-label data
    assert objects["cfg"].optimized_metric == name
    history = _val_history(tmp_path, name)
    assert len(history) == 4  # one validation per epoch
    best_epoch = max(range(4), key=lambda e: history[e])
    ckpt = objects["trainer"].checkpoint_callback
    assert Path(ckpt.best_model_path).name == f"epoch_{best_epoch:03d}.ckpt"
    assert metrics[name] == pytest.approx(max(history), abs=1e-5)  # what train.py returns
    # the tested weights are the best epoch's
    best = torch.load(ckpt.best_model_path, weights_only=True)["state_dict"]
    for key, value in best.items():
        assert torch.equal(value, objects["model"].state_dict()[key]), key
    saved = json.loads((Path(objects["cfg"].paths.output_dir) / "metrics.json").read_text())
    assert saved["optimized_metric"] == name and saved["checkpoint"] == ckpt.best_model_path


def test_an_unknown_validation_split_is_named(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"optimized_metric='val/zsl/mAP' is not a validation "
        r"metric of this data; use val/<split>/<metric> with split in \['seen'\]",
    ):
        train(_cfg(tmp_path, ["optimized_metric=val/zsl/mAP"]))


def test_early_stopping_stops_when_the_metric_stalls(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    # an improvement of 1000 points is impossible: the first validation sets the best, the next
    # one does not improve on it, and patience 1 stops the run after epoch 2 of 6
    cfg = _cfg(tmp_path, ["callbacks=early_stopping", "callbacks.early_stopping.patience=1",
                          "callbacks.early_stopping.min_delta=1000"], epochs=6)  # fmt: skip
    _, objects = train(cfg)
    assert objects["trainer"].current_epoch == 2
    assert "early stopping after epoch 2 (val/seen/mAP)" in caplog.text


def test_without_validation_data_the_last_epoch_is_tested(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = _cfg(tmp_path, epochs=2)
    with open_dict(cfg):
        cfg.data.val_fraction = 0.0
    metrics, objects = train(cfg)
    assert not any(k.startswith("val/") for k in metrics)
    ckpt = objects["trainer"].checkpoint_callback
    assert Path(ckpt.best_model_path).name == "epoch_001.ckpt"  # the last epoch
    assert "no validation: the last epoch" in caplog.text
    cfg = _cfg(tmp_path / "es", ["callbacks=early_stopping"])
    with open_dict(cfg):
        cfg.data.val_fraction = 0.0
    with pytest.raises(
        ValueError,
        match="callbacks=early_stopping needs validation data: set data.val_fraction=0.1",
    ):
        train(cfg)


def test_hydra_multirun_sweep_as_in_the_docs(tmp_path):
    """docs/training.md: `python train.py -m ... model.optimizer.lr=...,...` runs one job per
    value; each job folder holds metrics.json with its optimized_metric (best validation)."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "-m", "experiment=clip_adapter_demo",
           "model.optimizer.lr=0.001,0.01", "trainer.max_epochs=1", "logger=none",
           f"paths.data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}",
           "+data.generated={n_train:40,n_test:40,image_size:64,seed:0}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    for r in results:
        assert r["optimized_metric"] == "val/seen/mAP"
        assert 0 < r["metrics"]["val/seen/mAP"] <= 100
