"""The GPU suite (benchmarks/gpu_suite.py) and its helpers, on CPU.

The smoke run is the suite exactly as a GPU machine runs it (CUDA tests first, then every
section), at toy sizes; the other tests cover stopping on a failed CUDA test, the markdown
rendering and README block, and the list of wheels a GPU machine must be given.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SUITE = [sys.executable, str(BENCH / "gpu_suite.py")]


@pytest.fixture
def bench_modules(monkeypatch):
    """Import benchmarks/*.py the way the scripts do (their folder on sys.path)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import _tables
    import gpu_wheels

    return _tables, gpu_wheels


@pytest.mark.slow
def test_smoke_run_covers_every_section_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "suite.json"
    cmd = [*SUITE, "--device", "cpu", "--smoke", "--repeats", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["errors"] == {} and res["skipped"] == {}
    # The CUDA tests ran first: collected, all skipped here, none failed.
    assert res["tests"]["rc"] == 0 and res["tests"]["failed"] == 0
    assert res["tests"]["skipped"] >= 20 and res["tests"]["passed"] == 0
    assert res["meta"]["smoke"] is True and res["meta"]["device"] == "cpu"
    rows = res["sinkhorn"]["rows"]
    cases = {r["case"] for r in rows}
    assert cases == {"ram_coco_zsl", "ram_coco_gzsl", "ram_nus_gzsl", "lazsl_imagenet",
                     "lico_resnet50", "otfusion_imagenet"}  # fmt: skip
    expected = {"ramlico", "plain log loop", "POT batch (log)"}
    if any(shutil.which(c) for c in ("g++", "c++", "clang++")):  # torch.compile on CPU
        expected.add("ramlico (compiled)")
    for case in cases:  # every case has the engine, its compiled path and both baselines
        assert expected <= {r["impl"] for r in rows if r["case"] == case}
    assert all(r["median_ms"] > 0 and r["floor_ms"] > 0 for r in rows)
    modes = {(r["batch"], r["mode"]) for r in res["ram"]["rows"]}
    assert modes == {(2, "baseline"), (2, "train"), (4, "baseline"), (4, "infer")}
    assert res["lazsl"]["images_per_s"] > 0 and res["lazsl"]["crops"] == 4
    assert res["lico"]["overhead_ratio"] > 0 and res["lico"]["backbone"] == "test_resnet"
    assert res["otfusion"]["n"] == 500 and res["otfusion"]["seconds_per_round"] > 0
    table = out.with_suffix(".md").read_text()
    for title in ("Sinkhorn, fp32", "RAM, ramlico-tiny-ViT", "LaZSL,", "LICO training", "OTFusion"):
        assert title in table
    assert "| otfusion_imagenet | 1x500x20 | 4 |" in table


def test_a_failing_cuda_test_stops_the_suite(tmp_path):
    failing = tmp_path / "test_broken.py"
    failing.write_text("import pytest\n\n@pytest.mark.gpu\ndef test_broken():\n    assert 1 == 2\n")
    out = tmp_path / "suite.json"
    cmd = [*SUITE, "--device", "cpu", "--smoke", "--tests", str(failing), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    res = json.loads(out.read_text())
    assert res["tests"]["failed"] == 1 and res["tests"]["rc"] == 1
    assert "assert 1 == 2" in res["tests"]["output_tail"]
    assert not any(name in res for name in ("sinkhorn", "ram", "lazsl", "lico", "otfusion"))


RESULTS = {
    "meta": {"gpu": "NVIDIA H200", "torch": "2.11.0+cu130", "cuda": "13.0",
             "date": "2026-12-01T10:00:00+00:00", "commit": "0123456789abcdef",
             "command": "benchmarks/gpu_suite.sh"},
    "tests": {"passed": 22, "failed": 0, "skipped": 0},
    "sinkhorn": {
        "meta": {"copy_bandwidth_gb_s": {"cuda": 4300.0}},
        "rows": [
            {"case": "ram_coco_gzsl", "shape": "32x196x65", "iters": 100, "impl": "ramlico",
             "median_ms": 10.0, "speedup_of_ramlico": 1.0, "floor_ms": 0.0759},
            {"case": "ram_coco_gzsl", "shape": "32x196x65", "iters": 100,
             "impl": "ramlico (graph)", "median_ms": 0.912, "speedup_of_ramlico": 0.0912,
             "floor_ms": 0.0759},
            {"case": "ram_coco_gzsl", "shape": "32x196x65", "iters": 100,
             "impl": "POT batch (log)", "median_ms": 19.8, "speedup_of_ramlico": 1.98,
             "floor_ms": 0.0759},
        ],
    },
    "otfusion": {"n": 50000, "k": 1000, "rounds": 9, "seconds": 1.8, "seconds_per_round": 0.2,
                 "peak_cuda_gib": 1.234, "peak_rss_gib": 3.0},
    "errors": {"lico": "Traceback ...\nRuntimeError: CUDA out of memory\n"},
    "skipped": {"lazsl": "time budget of 420 s spent"},
}  # fmt: skip


def test_render_markdown_tables(bench_modules):
    _tables, _ = bench_modules
    text = _tables.render_markdown(RESULTS)
    lines = text.splitlines()
    assert lines[0].startswith(
        "**NVIDIA H200** (torch 2.11.0+cu130, CUDA 13.0; 2026-12-01, commit 0123456789) "
        "CUDA tests (`pytest -m gpu`): 22 passed."
    )
    # Columns in the fixed order, only the implementations present; x = time / ramlico.
    assert (
        "| case | shape | iters | ramlico | ramlico (graph) | POT batch (log) | floor | x floor |"
        in lines
    )
    # best engine path 0.912 ms / floor 0.0759 ms = 12.0
    assert (
        "| ram_coco_gzsl | 32x196x65 | 100 | 10.0 | 0.912 (0.091x) | 19.8 (1.98x) | 0.076 | 12.0 |"
        in lines
    )
    assert "(4300 GB/s)" in text
    assert "| 50,000 x 1,000 | 9 | 1.80 | 0.200 | 1.23 |" in lines  # CUDA peak preferred
    assert "- lico: failed (RuntimeError: CUDA out of memory)" in lines
    assert "- lazsl: skipped (time budget of 420 s spent)" in lines
    assert "RAM," not in text  # absent sections get no table
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_fmt_keeps_three_significant_figures(bench_modules):
    fmt = bench_modules[0].fmt
    assert [fmt(x) for x in (0.0912, 0.912, 9.12, 91.2, 912.4, 1351.0, None)] == [
        "0.091", "0.912", "9.12", "91.2", "912", "1351", "-"]  # fmt: skip


def test_update_readme_replaces_only_the_marked_block(bench_modules):
    _tables, _ = bench_modules
    text = f"# t\n\nbefore\n{_tables.BEGIN}\nold table\n{_tables.END}\nafter\n"
    new = _tables.update_readme(text, "| new |\n")
    assert new == f"# t\n\nbefore\n{_tables.BEGIN}\n| new |\n{_tables.END}\nafter\n"
    assert _tables.update_readme(new, "| new |\n") == new  # idempotent
    with pytest.raises(ValueError, match="needs exactly one <!-- gpu-suite:begin -->"):
        _tables.update_readme("no markers here", "| new |")


def test_readme_has_the_gpu_block(bench_modules):
    _tables, _ = bench_modules
    readme = (ROOT / "README.md").read_text()
    assert _tables.update_readme(readme, "x").count("\nx\n") == 1


def test_render_cli_prints_the_table_and_fills_a_readme(tmp_path, bench_modules):
    _tables, _ = bench_modules
    saved = tmp_path / "gpu.json"
    saved.write_text(json.dumps(RESULTS))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{_tables.BEGIN}\n(no GPU run yet)\n{_tables.END}\n")
    cmd = [*SUITE, "--render", str(saved), "--readme", str(readme)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = _tables.render_markdown(RESULTS)
    assert proc.stdout.startswith(table)
    assert readme.read_text() == f"intro\n{_tables.BEGIN}\n{table.strip()}\n{_tables.END}\n"


def test_gpu_wheels_are_exactly_what_the_gpu_image_lacks(bench_modules):
    _, wheels = bench_modules
    missing = wheels.missing_distributions(wheels.project_requirements())
    # open_clip brings ftfy -> wcwidth; hydra and omegaconf bring antlr4; grad-cam brings ttach.
    for name in ("open-clip-torch", "ftfy", "wcwidth", "pot", "hydra-core", "omegaconf",
                 "antlr4-python3-runtime", "grad-cam", "ttach"):  # fmt: skip
        assert name in missing and missing[name]  # pinned to the version installed here
    for name in ("torch", "torchvision", "timm", "lightning", "torchmetrics", "numpy", "ruff"):
        assert name not in missing  # on the image already (ruff: not needed to run)
    # Everything else it lists is a requirement the image does not have.
    assert not set(missing) & wheels.ON_GPU_IMAGE


def test_gpu_wheels_walk_stops_at_the_image_and_names_uninstalled_needs(bench_modules):
    _, wheels = bench_modules
    from packaging.requirements import Requirement

    assert wheels.missing_distributions([Requirement("timm")]) == {}  # on the image
    got = wheels.missing_distributions([Requirement("open_clip_torch")])
    assert set(got) == {"open-clip-torch", "ftfy", "wcwidth"}
    assert wheels.missing_distributions([Requirement("pot; python_version < '3.0'")]) == {}
    with pytest.raises(ValueError, match="not-a-real-dist-xyz is needed on the GPU machine"):
        wheels.missing_distributions([Requirement("not-a-real-dist-xyz")])
