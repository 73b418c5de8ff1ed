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
        cfg.data.generated.n_test_per_class = 4
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
        ["model/backbone=clip_toy", "data=classification_generated_hard", "trainer=cpu"],
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


def test_lazsl_cub_experiment_reads_a_cub_layout(tmp_path):
    """experiment=lazsl_cub end to end on a 2-class fake CUB_200_2011 (tiny random CLIP)."""
    import csv
    import json
    from pathlib import Path

    from PIL import Image

    root = tmp_path / "CUB_200_2011"
    rows = [(1, "001.Black_footed_Albatross", "a.jpg", 0), (2, "002.Laysan_Albatross", "b.jpg", 0),
            (3, "002.Laysan_Albatross", "c.jpg", 1)]  # fmt: skip
    for i, folder, name, _ in rows:
        (root / "images" / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (80, 60), (40 * i, 90, 200)).save(root / "images" / folder / name)
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (root / "images.txt").write_text("".join(f"{i} {f}/{n}\n" for i, f, n, _ in rows))
    (root / "image_class_labels.txt").write_text("1 1\n2 2\n3 2\n")
    (root / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, _, t in rows))
    desc = tmp_path / "descriptors_cub.json"
    desc.write_text(json.dumps({"Black-footed Albatross": ["black feet", "a long beak"],
                                "Laysan Albatross": ["white head"]}))  # fmt: skip
    cfg = compose_cfg("eval", tmp_path, ["experiment=lazsl_cub", f"data.root={root}",
                                         f"model.descriptors_file={desc}"])  # fmt: skip
    with open_dict(cfg):
        cfg.model.backbone = {"_target_": "ramlico.backbones.CLIPBackbone",
                              "model_name": "ramlico-tiny-ViT", "pretrained": None}  # fmt: skip
        cfg.model.num_crops = 4
        cfg.data.image_size = 64
        cfg.data.num_workers = 0
        cfg.logger = None
        cfg.callbacks = None
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.enable_progress_bar = False
    metrics = evaluate(cfg)[0]
    out = tmp_path / "out"
    preds = list(csv.DictReader((out / "predictions.csv").open()))
    # The test split (is_training_image = 0) holds a.jpg and b.jpg.
    assert [(Path(r["path"]).name, r["true_class"]) for r in preds] == [
        ("a.jpg", "Black-footed Albatross"), ("b.jpg", "Laysan Albatross")
    ]  # fmt: skip
    assert metrics["test/test/top1"] == pytest.approx(
        50.0 * sum(r["correct"] == "1" for r in preds)
    )
    record = json.loads((out / "zero_shot_metrics.json").read_text())
    assert (record["method"], record["dataset"], record["images"]) == ("lazsl", "cub", 2)
    explained = json.loads((out / "lazsl_explanations.json").read_text())
    assert {d["text"] for d in explained[0]["descriptors"]} <= {
        "Black-footed Albatross, which has black feet",
        "Black-footed Albatross, which is a long beak",
        "Laysan Albatross, which has white head",
    }
