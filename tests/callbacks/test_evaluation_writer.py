"""Every evaluation writes per-image predictions, per-label AP and results.json."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict
from sklearn.metrics import average_precision_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.cli import evaluate  # noqa: E402


@pytest.fixture(scope="module")
def zero_shot_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval_writer")
    cfg = shrink(compose_cfg("eval", tmp, ["experiment=clip_zeroshot_demo"]), tmp / "gen")
    metrics, objects = evaluate(cfg)
    folder = Path(cfg.paths.output_dir) / "csv" / "version_0"
    return metrics, objects, folder


def test_files_sit_beside_metrics_csv(zero_shot_run):
    _, _, folder = zero_shot_run
    names = {p.name for p in folder.iterdir()}
    for split in ("zsl", "gzsl"):
        assert {f"predictions_{split}.csv", f"predictions_{split}.jsonl",
                f"per_label_ap_{split}.csv"} <= names  # fmt: skip
    assert {"metrics.csv", "results.json"} <= names


def test_per_image_predictions_cover_every_test_image_in_order(zero_shot_run):
    _, objects, folder = zero_shot_run
    dataset = objects["datamodule"].test_datasets["gzsl"]
    rows = [json.loads(x) for x in (folder / "predictions_gzsl.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(dataset)))
    for r in rows[:5]:
        record = dataset.records[r["index"]]
        assert r["image"] == str(record.image) and sorted(r["targets"]) == sorted(record.labels)
        scores = [t["score"] for t in r["top"]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 5


def test_per_label_ap_equals_sklearn_and_its_mean_is_the_logged_map(zero_shot_run):
    metrics, objects, folder = zero_shot_run
    model, dm = objects["model"], objects["datamodule"]
    names = dm.label_names("zsl")
    rows = list(csv.DictReader((folder / "per_label_ap_zsl.csv").open()))
    assert [r["label"] for r in rows] == names
    lines = (folder / "predictions_zsl.jsonl").read_text().splitlines()
    assert len(lines) == len(dm.test_datasets["zsl"])
    # recompute the scores of the whole split and compare AP with scikit-learn
    import torch

    loader = dm.test_dataloader()[0]
    scores, targets = [], []
    with torch.no_grad():
        for x, y in loader:
            scores.append(model.scores(x, names))
            targets.append(y)
    s, y = torch.cat(scores).numpy(), torch.cat(targets).numpy()
    for c, row in enumerate(rows):
        assert float(row["AP"]) == pytest.approx(100 * average_precision_score(y[:, c], s[:, c]),
                                                 abs=1e-3)  # fmt: skip
        assert int(row["positives"]) == int(y[:, c].sum())
    ap_mean = np.mean([float(r["AP"]) for r in rows])
    assert ap_mean == pytest.approx(metrics["test/zsl/mAP"], abs=1e-3)
    results = json.loads((folder / "results.json").read_text())
    assert results["metrics"]["zsl"]["mAP"] == pytest.approx(metrics["test/zsl/mAP"])
    assert results["per_label_ap"]["zsl"][names[0]] == pytest.approx(float(rows[0]["AP"]), 1e-4)
    assert results["method"] == "CLIPZeroShot" and not results["tags"]["zsl"]["calibrated"]


def test_trained_runs_carry_a_validation_calibration(tmp_path):
    from ramlico.cli import train
    from ramlico.cli.checkpoint import load_checkpoint

    cfg = shrink(compose_cfg("train", tmp_path, ["experiment=clip_adapter_demo"]), tmp_path / "g")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
    metrics, _ = train(cfg)
    cal = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["ramlico"][
        "calibration"
    ]
    # fitted on the validation split: held-out training images over the seen labels
    assert cal["fitted"] and cal["info"]["split"] == "seen" and 0 < cal["threshold"] < 1
    assert metrics["val/seen/tag_F1"] == pytest.approx(cal["info"]["tag_f1"], abs=1e-4)
    results = json.loads(next(Path(cfg.paths.output_dir).rglob("results.json")).read_text())
    assert results["tags"]["gzsl"]["calibrated"]
    assert results["calibration"]["threshold"] == pytest.approx(cal["threshold"])
