"""Single-label zero-shot evaluation: OTFusion and zero-shot CLIP on generated shapes."""

from __future__ import annotations

import pytest
from helpers import compose_cfg
from omegaconf import open_dict

from ramlico.cli import evaluate


def _run(tmp_path, overrides):
    cfg = compose_cfg("eval", tmp_path, overrides)
    with open_dict(cfg):
        cfg.data.root = str(tmp_path.parent / "gen_cls")
        cfg.data.generated.n_per_class = 4
        cfg.logger = None
        cfg.callbacks = None
        cfg.trainer.enable_progress_bar = False
    return evaluate(cfg)[0]


def test_otfusion_demo_reports_fused_and_clip_accuracy_and_clip_matches_zero_shot(tmp_path):
    fused = _run(tmp_path / "a", ["experiment=otfusion_demo"])
    assert set(fused) == {f"test/test/{m}" for m in ("top1", "top5", "clip_top1", "clip_top5")}
    assert all(0.0 <= v <= 100.0 for v in fused.values())
    # OTFusion's CLIP prior is inductive zero-shot CLIP: the same accuracy as the CLIP baseline.
    zero_shot = _run(
        tmp_path / "b",
        ["model/backbone=clip_tiny", "data=classification_generated", "trainer=cpu"],
    )
    assert zero_shot["test/test/top1"] == pytest.approx(fused["test/test/clip_top1"], abs=1e-4)
    assert zero_shot["test/test/top5"] == pytest.approx(fused["test/test/clip_top5"], abs=1e-4)


def test_lazsl_demo_runs_offline(tmp_path):
    metrics = _run(tmp_path / "c", ["experiment=lazsl_demo", "model.num_crops=4"])
    assert set(metrics) == {"test/test/top1", "test/test/top5"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())


def test_lazsl_writes_explanations_that_add_up(tmp_path):
    import json
    from pathlib import Path

    _run(tmp_path / "d", ["experiment=lazsl_demo", "model.num_crops=4", "model.explain_images=3"])
    out = Path(tmp_path / "d" / "out" / "lazsl_explanations.json")
    records = json.loads(out.read_text())
    assert [r["image_index"] for r in records] == [0, 1, 2]
    for r in records:
        # 5 bundled descriptors per class, all listed (explain_top=5): contributions sum to psi.
        total = sum(d["contribution"] for d in r["descriptors"])
        assert total == pytest.approx(r["score"], rel=1e-5)
        assert len(r["crops"]) == 4 and all(len(c["box_xyxy"]) == 4 for c in r["crops"])
        assert r["descriptors"][0]["text"].startswith(r["predicted"])
    # One PNG panel per explained image, next to the JSON (image + boxes | descriptor bars).
    from PIL import Image

    from ramlico.zeroshot.panel import PANEL_SIZE

    pngs = sorted((tmp_path / "d" / "out" / "lazsl_explanations").glob("*.png"))
    assert [p.name for p in pngs] == ["00000.png", "00001.png", "00002.png"]
    for p in pngs:
        with Image.open(p) as img:
            assert img.format == "PNG" and img.size == PANEL_SIZE


def test_baseline_run_writes_predictions_matching_its_metrics(tmp_path):
    import csv
    import json
    from pathlib import Path

    metrics = _run(tmp_path / "e", ["experiment=lazsl_demo", "model.method=waffle",
                                    "model.waffle_count=2"])  # fmt: skip
    out = Path(tmp_path / "e" / "out")
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 80  # 20 generated classes x 4 images
    assert [int(r["index"]) for r in rows] == list(range(80))
    assert all(Path(r["path"]).is_file() and r["top1_class"] for r in rows)
    top1 = 100 * sum(r["correct"] == "1" for r in rows) / 80
    assert metrics["test/test/top1"] == pytest.approx(top1, abs=1e-3)
    record = json.loads((out / "zero_shot_metrics.json").read_text())
    assert record["method"] == "waffle" and record["dataset"] == "generated"
    assert record["top1"] == pytest.approx(top1) and record["images"] == 80
    assert not (out / "lazsl_explanations.json").exists()  # baselines do not explain
