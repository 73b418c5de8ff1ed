"""Fixtures of the prediction tests: one trained RAM demo checkpoint, images drawn here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.data.generated import GENERATED_SEEN, GENERATED_UNSEEN, draw_scene  # noqa: E402

LABELS = sorted(GENERATED_SEEN) + sorted(GENERATED_UNSEEN)


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


def draw_images(folder: Path, n: int, seed: int, size: int = 64) -> list[tuple[Path, list[dict]]]:
    """``n`` new scenes (not the training data): 1-3 labelled objects each, written as PNG."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        labels = [LABELS[j] for j in rng.choice(len(LABELS), size=k, replace=False)]
        image, objects = draw_scene(labels, size, rng)
        path = folder / f"drawn_{i:03d}.png"
        image.save(path)
        out.append((path, objects))
    return out
