"""Every benchmark script runs end to end at a tiny size and writes its JSON (smoke; no timings
are asserted: speed is measured by running the scripts, see README "Benchmarks")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    # one configuration, in its own subprocess (the CPU default); the GPU suite runs the others
    "ram_step": ["--model", "ramlico-tiny-ViT", "--batch", "2", "--steps", "1", "--warmup", "0",
                 "--precision", "fp32", "--device", "cpu", "--mode", "train"],
    "lico_step": ["--backbone", "test_resnet", "--text-model", "ramlico-tiny-ViT", "--batch", "4",
                  "--image-size", "32", "--classes", "10", "--steps", "1", "--warmup", "0"],
    "lazsl": ["--model", "ramlico-tiny-ViT", "--images", "2", "--batch", "1", "--classes", "20",
              "--crops", "4", "--text-sample", "8", "--device", "cpu"],
    "otfusion": ["--n", "500", "--k", "10", "--rounds", "2", "--device", "cpu"],
    "sinkhorn": ["--device", "cpu", "--cases", "ram_coco_zsl", "--repeats", "1", "--quick"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_script_runs(name, tmp_path):
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *CASES[name], "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text())  # non-empty results
