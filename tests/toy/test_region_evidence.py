"""Region evidence on the toy world, measured against the scenes' ground-truth objects.

* train.py's test (RAM on the toy CLIP, 3 seeds) writes ``regions/<split>/<source>/...`` to
  metrics.json, and RAM's OT plan points at the right object more often than zero-shot CLIP's
  raw patch similarity and than the uniform map, on ZSL and GZSL;
* ``ramlico-predict`` on scenes this test draws (not training data), with a label list it
  chooses, writes tags, scores, one heatmap per label and the gallery, and each present label's
  heatmap peaks on its object far more often than a uniform map would (RAM checkpoint and
  checkpoint-free zero-shot CLIP).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg  # noqa: E402

from ramlico.data.generated import draw_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# pointing-game points (percent of present image-label pairs); observed gaps in docs/toy_world.md
MARGIN_OVER_CLIP = 15.0
MARGIN_OVER_UNIFORM = 30.0
# the test's own labels and scenes: 2 seen + 2 unseen labels of the split, and 2 more seen ones
LABELS = ["red circle", "blue triangle", "blue square", "yellow cross", "green star", "red cross"]


def test_ram_plan_points_at_the_right_object_more_often_than_clip_and_uniform(toy_ram):
    for seed, (metrics, run) in toy_ram.items():
        saved = json.loads((run / "metrics.json").read_text())["metrics"]
        for split in ("zsl", "gzsl"):
            key = f"regions/{split}/{{}}/pointing"
            ram, clip, uniform = (metrics[key.format(s)] for s in ("ram_plan", "clip_patch",
                                                                   "uniform"))  # fmt: skip
            print(f"seed {seed} {split}: pointing RAM {ram:.1f} CLIP patch {clip:.1f} "
                  f"uniform {uniform:.1f}")  # fmt: skip
            assert ram > clip + MARGIN_OVER_CLIP
            assert ram > uniform + MARGIN_OVER_UNIFORM
            mass = f"regions/{split}/{{}}/mass"
            assert metrics[mass.format("ram_plan")] > metrics[mass.format("uniform")] + 20
            assert saved[key.format("ram_plan")] == ram  # written to metrics.json
        assert 5 < metrics["regions/gzsl/uniform/pointing"] < 20  # the objects' area share


def _draw(folder: Path, n: int, seed: int) -> dict[str, list[dict]]:
    """``n`` scenes of 1-3 objects of :data:`LABELS`; ``{file name: objects}``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    out = {}
    for i in range(n):
        labels = [LABELS[j] for j in rng.choice(len(LABELS), size=int(rng.integers(1, 4)),
                                                replace=False)]  # fmt: skip
        image, objects = draw_scene(labels, 64, rng)
        image.save(folder / f"scene_{i:02d}.png")
        out[f"scene_{i:02d}.png"] = objects
    return out


def _pointing(records: list[dict], scenes: dict[str, list[dict]]) -> tuple[float, float]:
    """Pointing game of the written peaks and the uniform map's expectation (area share), %."""
    hits, shares = [], []
    for r in records:
        area = r["width"] * r["height"]
        for obj in scenes[Path(r["image"]).name]:
            x, y = r["labels"][obj["label"]]["peak_xy"]
            (cx, cy), radius = obj["center"], obj["radius"]
            hits.append(math.hypot(x - cx, y - cy) <= radius)
            shares.append(math.pi * radius**2 / area)
    return 100 * float(np.mean(hits)), 100 * float(np.mean(shares))


def _check_outputs(out: Path, records: list[dict], n: int) -> None:
    assert len(records) == n and (out / "predictions.csv").is_file()
    page = (out / "index.html").read_text()
    for r in records:
        assert list(r["labels"]) == LABELS and isinstance(r["tags"], list)
        assert set(r["heatmap_files"]) == set(LABELS)  # one heatmap per label
        for name, f in r["heatmap_files"].items():
            assert (out / f).is_file() and f in page
            assert math.isfinite(r["labels"][name]["score"])


def test_ramlico_predict_heatmaps_peak_on_the_objects(toy_ram, tmp_path):
    scenes = _draw(tmp_path / "scenes", 16, seed=101)
    run = toy_ram[0][1]
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from ramlico.cli.main import predict_main; predict_main()",
           f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"inputs={tmp_path / 'scenes'}",
           f"labels=[{','.join(LABELS)}]", f"hydra.run.dir={out}", "trainer.accelerator=cpu",
           "~callbacks.rich_progress_bar"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(t) for t in (out / "predictions.jsonl").read_text().splitlines()]
    _check_outputs(out, records, len(scenes))
    pointing, uniform = _pointing(records, scenes)
    print(f"ramlico-predict, RAM (seed 0): pointing {pointing:.1f} uniform {uniform:.1f}")
    assert pointing > uniform + MARGIN_OVER_UNIFORM


def test_zero_shot_predict_heatmaps_peak_on_the_objects(tmp_path):
    from ramlico.cli import predict

    scenes = _draw(tmp_path / "scenes", 16, seed=102)
    cfg = compose_cfg("predict", tmp_path, [
        "experiment=clip_zeroshot_demo", "model/backbone=clip_toy", f"inputs={tmp_path / 'scenes'}",
        f"labels=[{','.join(LABELS)}]", "trainer.accelerator=cpu", "~callbacks.rich_progress_bar",
    ])  # fmt: skip
    records, _ = predict(cfg)
    _check_outputs(tmp_path / "out", records, len(scenes))
    pointing, uniform = _pointing(records, scenes)
    print(f"predict, zero-shot toy CLIP: pointing {pointing:.1f} uniform {uniform:.1f}")
    assert pointing > uniform + 20
