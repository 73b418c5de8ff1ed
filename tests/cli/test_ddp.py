"""Evaluation with 2 CPU processes (DDP, gloo) gives exactly the 1-process metrics."""

from __future__ import annotations

import json

import pytest
import torch.distributed as dist
from helpers import compose_cfg, shrink
from omegaconf import open_dict

from ramlico.cli import evaluate


def _eval(tmp_path, devices: int) -> dict[str, float]:
    cfg = shrink(compose_cfg("eval", tmp_path / f"d{devices}", ["experiment=clip_zeroshot_demo"]),
                 tmp_path / "gen")  # fmt: skip
    with open_dict(cfg):
        cfg.data.generated.n_test = 41  # odd: a padding sampler would repeat an image
        cfg.data.eval_batch_size = 8
        cfg.logger = None
        cfg.trainer.devices = devices
        if devices > 1:
            cfg.trainer.strategy = "ddp_spawn"
    metrics, _ = evaluate(cfg)
    return metrics


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_two_process_evaluation_equals_one_process(tmp_path):
    one = _eval(tmp_path, 1)
    two = _eval(tmp_path, 2)
    assert set(one) == set(two) and len([k for k in one if k.startswith("test/")]) == 14
    # 7 metrics x (ZSL, GZSL), and region evidence (each process scores the whole test set)
    # clip_saa, clip_patch, uniform x (ZSL, GZSL) x (pointing, mass)
    assert len([k for k in one if k.startswith("regions/")]) == 12
    for key, value in one.items():
        assert two[key] == pytest.approx(value, abs=1e-5), key
    # the per-image predictions and per-label AP files are gathered over ranks: the same files
    for name in ("predictions_gzsl.jsonl", "predictions_zsl.csv", "per_label_ap_gzsl.csv"):
        rows1 = (tmp_path / "d1" / "out" / name).read_text().splitlines()
        rows2 = (tmp_path / "d2" / "out" / name).read_text().splitlines()
        assert len(rows1) == len(rows2) > 1, name
        if name.endswith(".jsonl"):
            for a, b in zip(rows1, rows2, strict=True):
                ra, rb = json.loads(a), json.loads(b)
                assert (ra["index"], ra["image"], ra["targets"]) == (rb["index"], rb["image"],
                                                                     rb["targets"])  # fmt: skip
                assert [t["label"] for t in ra["top"]] == [t["label"] for t in rb["top"]]
