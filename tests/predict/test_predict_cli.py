"""ramlico-predict / predict.py end to end, from a folder that is not the checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
import tomllib
from drawing import draw_images
from helpers import compose_cfg
from PIL import Image

import ramlico
from ramlico.callbacks.prediction import slug

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("ramlico-train", "ramlico-evaluate", "ramlico-predict", "ramlico-demo")
LABELS = ["red circle", "blue square", "green star", "yellow cross"]


def test_console_scripts_are_declared_and_resolve():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(SCRIPTS) <= set(scripts)
    for name in SCRIPTS:
        module, func = scripts[name].split(":")
        assert callable(getattr(import_module(module), func)), name


def _script(name: str) -> list[str]:
    """The installed console script if it is this checkout's, else its entry point by hand."""
    path = shutil.which(name)
    if path is not None:
        return [path]
    module, func = {"ramlico-predict": ("ramlico.cli.main", "predict_main")}[name]
    return [sys.executable, "-c", f"from {module} import {func}; {func}()"]


def _inputs(folder: Path) -> list[Path]:
    """Drawn scenes in several sizes and modes: RGB, RGBA, grey, an EXIF-rotated JPEG."""
    drawn = [p for p, _ in draw_images(folder, 4, seed=11, size=80)]
    Image.open(drawn[1]).convert("RGBA").save(drawn[1])
    Image.open(drawn[2]).convert("L").resize((120, 60)).save(drawn[2])
    exif = Image.Exif()
    exif[0x0112] = 8
    rotated = folder / "drawn_003.JPG"
    Image.open(drawn[3]).resize((100, 70)).save(rotated, exif=exif.tobytes())
    drawn[3].unlink()
    return [*drawn[:3], rotated]


def test_ramlico_predict_writes_tags_heatmaps_and_gallery(ram_run, tmp_path):
    ckpt, _ = ram_run
    inputs = _inputs(tmp_path / "imgs")
    elsewhere = tmp_path / "elsewhere"  # not the checkout: configs must come from the package
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [*_script("ramlico-predict"), f"ckpt_path={ckpt}", f"inputs={tmp_path / 'imgs'}",
           f"labels=[{','.join(LABELS)}]", f"hydra.run.dir={out}",
           "trainer.accelerator=cpu"]  # fmt: skip
    done = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [Path(r["image"]).name for r in records] == [p.name for p in sorted(inputs)]
    api = ramlico.load_predictor(ckpt, device="cpu")(sorted(inputs), LABELS)
    for record, pred in zip(records, api, strict=True):
        assert (record["width"], record["height"]) == pred.size
        assert record["tags"] == pred.tags
        for c, name in enumerate(LABELS):
            assert record["labels"][name]["score"] == pytest.approx(float(pred.scores[c]), 1e-4)
            assert record["labels"][name]["probability"] == pytest.approx(
                float(pred.probabilities[c]), abs=1e-5
            )
            heat = out / record["heatmap_files"][name]
            assert heat.name == f"{slug(name)}.png"
            assert Image.open(heat).size == pred.size  # overlay on the upright original
    assert records[3]["width"] == 70 and records[3]["height"] == 100  # EXIF 8: rotated upright
    rows = (out / "predictions.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("image,tags,red circle_score")
    page = (out / "index.html").read_text()
    links = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert len(links) >= 4 * (1 + len(LABELS))  # thumbnails + one overlay per label and image
    assert all((out / link).is_file() for link in links)  # relative links, no server needed


def test_checkpoint_free_zero_shot_prediction(tmp_path):
    from ramlico.cli import predict

    inputs = [p for p, _ in draw_images(tmp_path / "imgs", 2, seed=12)]
    (tmp_path / "labels.txt").write_text("# my labels\nred circle\n\nblue star\n")
    cfg = compose_cfg("predict", tmp_path, [
        "experiment=clip_zeroshot_demo", f"inputs={tmp_path / 'imgs'}",
        f"labels_file={tmp_path / 'labels.txt'}", "top_k=1", "trainer.accelerator=cpu",
        "+trainer.enable_progress_bar=false", "~callbacks.rich_progress_bar",
    ])  # fmt: skip
    records, objects = predict(cfg)
    assert [Path(r["image"]) for r in records] == inputs
    assert all(list(r["labels"]) == ["red circle", "blue star"] and len(r["tags"]) == 1
               for r in records)  # fmt: skip
    assert (tmp_path / "out" / "predictions.jsonl").is_file()
    with pytest.raises(FileNotFoundError, match="labels_file not found"):
        predict(compose_cfg("predict", tmp_path, ["experiment=clip_zeroshot_demo",
                                                 f"inputs={inputs[0]}", "labels_file=nope.txt"]))
    arr = np.asarray(Image.open(inputs[0]))
    assert arr.shape == (64, 64, 3)


def test_lazsl_with_its_descriptor_file_writes_one_panel_per_image(tmp_path):
    from ramlico.cli import predict

    inputs = [p for p, _ in draw_images(tmp_path / "imgs", 3, seed=13)]
    cfg = compose_cfg("predict", tmp_path, [
        "experiment=lazsl_demo", f"inputs={tmp_path / 'imgs'}", "model.num_crops=6",
        "model.descriptors_file=generated_shapes", "labels=[red circle,blue star,green cross]",
        "trainer.accelerator=cpu", "~callbacks.rich_progress_bar",
    ])  # fmt: skip
    records, objects = predict(cfg)
    assert len(records) == len(inputs) == 3
    for r in records:
        assert r["panel_file"].startswith("panels/") and "heatmap_files" not in r
        panel = tmp_path / "out" / r["panel_file"]
        assert Image.open(panel).size == (776, 296)  # LaZSL's panel layout (PANEL_SIZE)
    page = (tmp_path / "out" / "index.html").read_text()
    assert all(r["panel_file"] in page for r in records)
