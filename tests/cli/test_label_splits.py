"""Any label split trains and evaluates: closed-set (no unseen label) and a single unseen label."""

from __future__ import annotations

import logging

import pytest
from helpers import LABELS, compose_cfg, tiny_custom, write_custom_data
from omegaconf import open_dict

from ramlico.cli import evaluate, train
from ramlico.cli.checkpoint import with_checkpoint_choices

BASE = ["experiment=ram_custom", "model/backbone=clip_tiny", "model.template='{}'"]


def _train(tmp_path, extra: list[str]):
    data = write_custom_data(tmp_path / "mine")
    cfg = tiny_custom(compose_cfg("train", tmp_path / "t", [*BASE, f"data.root={data}", *extra],
                                  hydra=True))  # fmt: skip
    return train(cfg)


def test_closed_set_multilabel_fine_tuning(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    # neither data.seen nor data.unseen: every test label is a training label -> closed-set
    metrics, objects = _train(tmp_path, [])
    assert objects["datamodule"].eval_splits == ["seen"]
    assert "closed-set" in caplog.text
    test = {k for k in metrics if k.startswith("test/")}
    assert test == {f"test/seen/{m}" for m in ("P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5", "mAP")}
    assert "val/seen/mAP" in metrics  # validation on held-out training images
    assert 0 < metrics["test/seen/mAP"] <= 100
    # evaluate with only ckpt_path: the same closed-set split and numbers
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    args = [f"ckpt_path={ckpt}"]
    ecfg = compose_cfg("eval", tmp_path / "e", with_checkpoint_choices(args), hydra=True)
    with open_dict(ecfg):
        ecfg.logger, ecfg.callbacks = None, None
    emetrics, _ = evaluate(ecfg)
    for key in test:
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4), key


def test_one_unseen_label_adapts_k_and_says_so(tmp_path, caplog):
    seen = [x for x in LABELS if x != "sofa"]
    metrics, objects = _train(tmp_path, [f"data.seen=[{','.join(seen)}]", "data.unseen=[sofa]"])
    assert objects["datamodule"].eval_splits == ["zsl", "gzsl"]
    # ZSL ranks 1 label: P/R/F1@1 (k=3 and k=5 do not exist); GZSL ranks 5 labels: k = 3, 5
    assert {k for k in metrics if k.startswith("test/zsl/")} == {
        "test/zsl/P@1", "test/zsl/R@1", "test/zsl/F1@1", "test/zsl/mAP"
    }  # fmt: skip
    assert {"test/gzsl/F1@3", "test/gzsl/F1@5"} <= set(metrics)
    assert "split 'zsl' has 1 label: P/R/F1@k reported at k=1 instead of k=3, 5" in caplog.text
    # every ZSL image has the one unseen label, so the top-1 prediction is it: R@1 = 100
    assert metrics["test/zsl/R@1"] == pytest.approx(100.0)
    assert metrics["test/zsl/mAP"] == pytest.approx(100.0)


def test_two_unseen_labels_report_f1_at_2(tmp_path):
    metrics, _ = _train(tmp_path, ["data.seen=[bus,car,cat]", "data.unseen=[dog,sofa]"])
    assert {"test/zsl/F1@2", "test/zsl/P@2", "test/zsl/R@2"} <= set(metrics)
    assert not any(k.startswith("test/zsl/") and k.endswith(("@3", "@5")) for k in metrics)
