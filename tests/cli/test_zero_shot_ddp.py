"""Single-label zero-shot evaluation under 2-process DDP (gloo, CPU) equals the 1-process run.

The image folder holds 39 images (odd), so a padding sampler would evaluate one image twice: the
unrepeated sampler gives each image to one rank, the per-image outputs are gathered and written
once in dataset order, and OTFusion fuses the gathered split as one process would.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch.distributed as dist
from helpers import compose_cfg
from omegaconf import open_dict

from ramlico.cli import evaluate
from ramlico.data import make_generated_classification

pytestmark = pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = make_generated_classification(tmp_path_factory.mktemp("odd") / "gen", n_per_class=2)
    (root / "manifest.json").unlink()
    (root / "red_circle" / "0001.png").unlink()  # 39 images
    return root


def _eval(tmp_path: Path, folder: Path, overrides: list[str], devices: int) -> tuple[dict, Path]:
    out = tmp_path / f"d{devices}"
    cfg = compose_cfg("eval", out, overrides)
    with open_dict(cfg):
        cfg.data.source = "folder"
        cfg.data.pop("generated")  # an option of the generated source only
        cfg.data.root = str(folder)
        cfg.data.batch_size = 4
        cfg.data.num_workers = 0
        cfg.logger = None
        cfg.callbacks = None
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.devices = devices
        if devices > 1:
            cfg.trainer.strategy = "ddp_spawn"
    metrics, _ = evaluate(cfg)
    return metrics, out / "out"


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "predictions.csv").open()))


def _same_predictions(one: Path, two: Path) -> None:
    a, b = _rows(one), _rows(two)
    assert len(a) == len(b) == 39
    assert [int(r["index"]) for r in b] == list(range(39))  # written once, dataset order
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if key.endswith("_score"):
                # batched CLIP forwards of other batch compositions round in the last float bits
                assert float(rb[key]) == pytest.approx(float(ra[key]), abs=1e-5), key
            else:
                assert rb[key] == ra[key], key
    ma = json.loads((one / "zero_shot_metrics.json").read_text())
    mb = json.loads((two / "zero_shot_metrics.json").read_text())
    assert ma == mb and ma["images"] == 39


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=lazsl_demo", "model.num_crops=4", "model.explain_images=5",
         "model.explain_png=false"],
        ["experiment=otfusion_demo"],
    ],
    ids=["lazsl", "otfusion"],
)  # fmt: skip
def test_two_processes_give_the_one_process_metrics_and_predictions(tmp_path, folder, overrides):
    m1, run1 = _eval(tmp_path, folder, overrides, 1)
    m2, run2 = _eval(tmp_path, folder, overrides, 2)
    assert set(m1) == set(m2) and "test/test/top1" in m1
    for key, value in m1.items():
        assert m2[key] == pytest.approx(value, abs=1e-4), key
    _same_predictions(run1, run2)
    if overrides[0] == "experiment=lazsl_demo":
        e1 = json.loads((run1 / "lazsl_explanations.json").read_text())
        e2 = json.loads((run2 / "lazsl_explanations.json").read_text())
        assert [r["image_index"] for r in e2] == [0, 1, 2, 3, 4]  # both ranks' images, in order
        # the same crops; their transported mass equal to round-off (the ranks' batches differ
        # in size, so the matrix products may sum in another order on some CPUs)
        crops1, crops2 = [r["crops"] for r in e1], [r["crops"] for r in e2]
        for r1, r2 in zip(crops1, crops2, strict=True):
            assert [c["box_xyxy"] for c in r2] == [c["box_xyxy"] for c in r1]
            mass1 = [c["contribution"] for c in r1]
            assert [c["contribution"] for c in r2] == pytest.approx(mass1, abs=1e-6)
