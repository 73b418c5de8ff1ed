"""RAM trains under DDP (2 CPU processes, gloo): one optimiser step per batch, ranks agree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.cli import train  # noqa: E402
from ramlico.cli.checkpoint import load_checkpoint  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")
def test_ram_demo_trains_with_two_processes(tmp_path, capfd):
    cfg = shrink(compose_cfg("train", tmp_path, []), tmp_path / "gen")  # ram_demo
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
        cfg.trainer.devices = 2
        cfg.trainer.strategy = "ddp_spawn"
        cfg.data.batch_size = 8
        cfg.logger = None
        cfg.data.val_fraction = 0.25
    metrics, _ = train(cfg)
    # validation and test metrics are logged once per rank without Lightning's "use sync_dist"
    # warning (one per metric key: 31 of them before)
    err = capfd.readouterr().err
    assert "sync_dist" not in err
    assert {"val/seen/mAP", "test/zsl/mAP", "test/gzsl/F1@3"} <= set(metrics)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    # 30 training images (10 of 40 held out), 2 ranks x batch 8 -> 2 batches per rank
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
