"""What a run prints off a terminal: run folder, one line per epoch, checkpoints, metrics file."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ramlico.cli.runlog import EpochSummary, quiet_third_party

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """`python train.py experiment=clip_adapter_demo ...` with stdout/stderr to a pipe (no TTY)."""
    tmp = tmp_path_factory.mktemp("out")
    run = tmp / "run"
    cmd = [
        sys.executable,
        "train.py",
        "experiment=clip_adapter_demo",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run}",
        f"paths.data_dir={tmp / 'data'}",
        "+data.generated={n_train:40,n_test:40,image_size:64,seed:0}",
        "data.val_fraction=0.25",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return run, done.stdout + done.stderr


def test_the_run_folder_checkpoints_and_metrics_file_are_printed(output):
    run, text = output
    assert f"run folder: {run}" in text
    best = re.search(r"best checkpoint: (\S+) \(val/seen/mAP = [\d.]+\)", text)
    assert (
        best and Path(best.group(1)).is_file() and Path(best.group(1)).parent == run / "checkpoints"
    )
    assert f"last checkpoint: {run / 'checkpoints' / 'last.ckpt'}" in text
    assert f"metrics: {run / 'metrics.json'}" in text
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["checkpoint"] == best.group(1)
    assert {"test/zsl/mAP", "test/gzsl/mAP", "val/seen/mAP", "train/loss"} <= set(saved["metrics"])


def test_one_summary_line_per_epoch_off_a_terminal(output):
    _, text = output
    lines = [ln for ln in text.splitlines() if re.search(r"\] - epoch \d/2 ", ln)]
    assert len(lines) == 2
    assert re.search(
        r"epoch 2/2  train/loss [\d.]+  val/seen/F1@3 [\d.]+ .* val/seen/mAP [\d.]+"
        r"(  val/seen/tag_F1 [\d.]+)?"  # the calibration callback's tag F1
        r"  \(best val/seen/mAP [\d.]+\)  [\d.]+ s$",
        lines[1],
    )


def test_third_party_chatter_is_quiet(output):
    _, text = output
    for chatter in (
        "Parsing model identifier",
        "Loaded built-in",
        "GPU available",
        "TPU available",
        "Tip:",
        "litlogger",
        "LeafSpec",
        "in eval mode at the start",
        "does not have many workers",
        "No pretrained weights loaded",
    ):
        assert chatter not in text, chatter


def test_quiet_third_party_restores_everything():
    root = logging.getLogger()
    filters = list(root.filters)
    lightning_info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = lightning_info.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_third_party():
            assert lightning_info.level == logging.WARNING
            warnings.warn("Found 3 module(s) in eval mode at the start of training.", stacklevel=1)
            warnings.warn("a real problem", stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real problem"]  # only the named ones go
    assert root.filters == filters and lightning_info.level == level


class _Trainer:
    current_epoch, max_epochs, sanity_checking = 1, 6, False

    def __init__(self, metrics):
        import torch

        self.callback_metrics = {k: torch.tensor(v) for k, v in metrics.items()}


def test_epoch_summary_line_keeps_the_best_value():
    summary = EpochSummary(when="always", monitor="val/seen/mAP")
    first = summary.line(_Trainer({"train/loss": 0.5123, "val/seen/mAP": 41.23, "lr/x": 1.0}))
    assert first.startswith(
        "epoch 2/6  train/loss 0.5123  val/seen/mAP 41.2  (best val/seen/mAP 41.2)"
    )
    second = summary.line(_Trainer({"train/loss": 0.4, "val/seen/mAP": 39.0}))
    assert "val/seen/mAP 39.0  (best val/seen/mAP 41.2)" in second
    with pytest.raises(ValueError, match="when='sometimes'"):
        EpochSummary(when="sometimes")
