"""Shared toy-world runs: RAM trained once per seed, used by the behaviour and region tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

SEEDS = (0, 1, 2)
# ram_demo shortened to 5 of its 15 epochs: the gains over zero-shot CLIP and the plan's pointing
# are already there (observed values in the tests' docstrings and printouts)
RAM_EPOCHS = ["trainer.max_epochs=5", "model.scheduler.max_epochs=5"]


@pytest.fixture(scope="session")
def toy_ram(tmp_path_factory) -> dict[int, tuple[dict, Path]]:
    """``{seed: (test metrics, run dir)}`` for seeds 0-2: ram_demo on the toy CLIP (5 epochs, the
    demo's 480 train / 160 test images), trained and tested by ``train()``; the run dir holds
    ``checkpoints/last.ckpt`` and ``metrics.json``."""
    from ramlico.cli import train

    data = tmp_path_factory.mktemp("toy_ram_data")
    runs = {}
    for seed in SEEDS:
        tmp = tmp_path_factory.mktemp(f"toy_ram_{seed}")
        cfg = compose_cfg("train", tmp, [f"seed={seed}", *RAM_EPOCHS])  # ram_demo
        cfg = shrink(cfg, data, tiny=False)
        with open_dict(cfg):
            cfg.data.pop("generated")  # the demo's data set (480 train / 160 test images)
            cfg.logger = None
        metrics, _ = train(cfg)
        runs[seed] = metrics, Path(cfg.paths.output_dir)
    return runs
