"""Evaluation with 2 CPU processes (DDP, gloo) gives exactly the 1-process metrics."""

from __future__ import annotations

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
    assert set(one) == set(two) and len(one) == 14  # 7 metrics x (ZSL, GZSL)
    for key, value in one.items():
        assert two[key] == pytest.approx(value, abs=1e-5), key
