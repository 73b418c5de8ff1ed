"""Fixtures of the prediction tests: one trained RAM demo checkpoint, images drawn here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402


@pytest.fixture(scope="session")
def ram_run(tmp_path_factory):
    """``(checkpoint, run dir)``: ram_demo trained 6 epochs on 600 generated images (~15 s)."""
    from ramlico.cli import train

    tmp = tmp_path_factory.mktemp("ram_predict")
    cfg = shrink(compose_cfg("train", tmp, ["experiment=ram_demo"]), tmp / "gen")
    with open_dict(cfg):
        cfg.data.generated = {"n_train": 600, "n_test": 60, "image_size": 64, "seed": 0}
        cfg.trainer.max_epochs = 6
        cfg.test = False
        cfg.logger = None
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", Path(cfg.paths.output_dir)
