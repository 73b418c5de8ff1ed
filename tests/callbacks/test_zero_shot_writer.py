"""ZeroShotWriter: zero-shot output files come from a callback, configured or added by default."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg  # noqa: E402

from ramlico.callbacks import ZeroShotWriter  # noqa: E402
from ramlico.cli import evaluate  # noqa: E402
from ramlico.zeroshot.predictions import PredictionLog  # noqa: E402

LAZSL = ["experiment=lazsl_demo", "model.num_crops=4", "model.explain_images=3"]


def _run(tmp_path: Path, overrides: list[str], callbacks: bool = True) -> tuple[dict, dict, Path]:
    cfg = compose_cfg("eval", tmp_path, overrides)
    with open_dict(cfg):
        cfg.data.root = str(tmp_path.parent / "gen_cls")
        cfg.data.generated.n_test_per_class = 2  # 40 images
        cfg.logger = None
        cfg.trainer.enable_progress_bar = False
        if callbacks:
            cfg.callbacks.pop("rich_progress_bar")
        else:
            cfg.callbacks = None
    metrics, objects = evaluate(cfg)
    return metrics, objects, Path(cfg.paths.output_dir)


def _writers(objects: dict) -> list[ZeroShotWriter]:
    return [c for c in objects["trainer"].callbacks if isinstance(c, ZeroShotWriter)]


def test_the_configured_writer_is_the_only_one_and_its_files_match_the_metrics(tmp_path):
    metrics, objects, out = _run(tmp_path / "a", [*LAZSL, "callbacks.zero_shot_writer.top_k=3"])
    assert len(_writers(objects)) == 1 and _writers(objects)[0].top_k == 3
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [int(r["index"]) for r in rows] == list(range(40))
    assert "top3_class" in rows[0] and "top4_class" not in rows[0]
    summary = json.loads((out / "zero_shot_metrics.json").read_text())
    assert list(summary)[:5] == ["method", "dataset", "model", "images", "top1"]
    assert summary["method"] == "lazsl" and summary["images"] == 40
    top1 = 100 * sum(r["correct"] == "1" for r in rows) / 40
    assert top1 == pytest.approx(metrics["test/test/top1"]) == pytest.approx(summary["top1"])
    records = json.loads((out / "lazsl_explanations.json").read_text())
    assert [r["image_index"] for r in records] == [0, 1, 2]
    assert [r["predicted"] for r in records] == [rows[i]["top1_class"] for i in range(3)]


def test_without_callbacks_the_method_adds_a_default_writer(tmp_path):
    _, objects, out = _run(tmp_path / "b", LAZSL, callbacks=False)
    (writer,) = _writers(objects)
    assert (writer.top_k, writer.predictions, writer.explanations) == (5, True, True)
    assert {"predictions.csv", "zero_shot_metrics.json", "lazsl_explanations.json"} <= {
        p.name for p in out.iterdir()
    }


def test_options_switch_the_files_off(tmp_path):
    _, _, out = _run(tmp_path / "c", [*LAZSL, "callbacks.zero_shot_writer.predictions=false"])
    names = {p.name for p in out.iterdir()}
    assert "predictions.csv" not in names and "zero_shot_metrics.json" not in names
    assert "lazsl_explanations.json" in names  # explanations are their own option
    _, _, out = _run(tmp_path / "d", [*LAZSL, "callbacks.zero_shot_writer.explanations=false"])
    names = {p.name for p in out.iterdir()}
    assert "predictions.csv" in names
    assert "lazsl_explanations.json" not in names and "lazsl_explanations" not in names


def test_otfusion_files_come_from_its_epoch_outputs(tmp_path):
    metrics, objects, out = _run(tmp_path / "e", ["experiment=otfusion_demo"])
    part = objects["model"].epoch_outputs["test"]
    assert torch.equal(part["index"], torch.arange(40))
    expected = PredictionLog(k=5)
    expected.add(part["index"], part["scores"], part["targets"])
    assert expected.metrics()["top1"] == pytest.approx(metrics["test/test/top1"])
    summary = json.loads((out / "zero_shot_metrics.json").read_text())
    assert summary["method"] == "otfusion" and summary["split"] == "test"
    assert summary["clip_top1"] == pytest.approx(metrics["test/test/clip_top1"])
    assert summary["top1"] == pytest.approx(metrics["test/test/top1"])


def test_methods_without_zero_shot_outputs_get_no_zero_shot_files(tmp_path):
    # The writer sits in every evaluation's callbacks; it ignores methods without
    # zero_shot_outputs (CLIP zero-shot here, on the same single-label data).
    overrides = ["model/backbone=clip_tiny", "data=classification_generated", "trainer=cpu"]
    _, objects, out = _run(tmp_path / "f", overrides)
    assert len(_writers(objects)) == 1
    assert not (out / "predictions.csv").exists()
    assert not (out / "zero_shot_metrics.json").exists()
