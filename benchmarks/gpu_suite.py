"""The GPU suite: CUDA tests, then every benchmark at the methods' sizes, in one short command.

Made for a lent GPU with little time (one H100/H200 class GPU, about 5 minutes, nothing
installed at run time). Steps, in order:

1. ``pytest -m gpu`` (the CUDA tests: engine on CUDA vs CPU, bf16/fp16 autocast, no host sync
   per iteration, the graph and compiled fast paths). A failure stops the suite (exit code 1).
2. Sections, each the existing benchmark script run in-process with the sizes below:

   * ``sinkhorn``: ``benchmarks/sinkhorn.py --fast`` at RAM 32x196x{17,65,1006}, LaZSL
     32x1000x91x16, LICO 128x2048x12 and OTFusion 1x50,000x1,000: the engine (default, graph,
     compiled, log), the plain batched loop, POT's batched (and looped) solver, with the
     memory-bandwidth floor.
   * ``ram``: ``benchmarks/ram_step.py``, ViT-B/16 at random init, bf16 autocast: training step
     at batch 32 and inference at batch 512, each against frozen CLIP zero-shot at that batch.
   * ``lazsl``: ``benchmarks/lazsl.py``, 1000 classes x 90 crops (resized on the GPU), bf16,
     images/s and the split.
   * ``lico``: ``benchmarks/lico_step.py``, ResNet-50 batch 64, LICO step vs CE step, bf16.
   * ``otfusion``: ``benchmarks/otfusion.py``, 50,000 x 1,000, 9 rounds.

   A section that raises is recorded under ``errors`` and the others still run (exit code 2);
   sections not started before ``--budget-s`` are listed under ``skipped``.
3. One JSON (``--out``; sections keyed ``sinkhorn``, ``ram``, ``lazsl``, ``lico``,
   ``otfusion``, plus ``meta`` and ``tests``), rewritten after every step, and the markdown
   tables next to it (same name, ``.md``), also printed at the end.

``--device cpu --smoke`` runs all of it at toy sizes (about a minute; tested in CI).
``--render JSON [--readme README.md]`` prints the tables of a saved result (and puts them
between the README's ``gpu-suite`` markers). How to run it on a lent GPU: docs/performance.md.

    benchmarks/gpu_suite.sh             # on the GPU machine (carried wheels: make gpu-wheels)
    python benchmarks/gpu_suite.py --device cpu --smoke --out /tmp/suite.json
    python benchmarks/gpu_suite.py --render benchmarks/results/gpu_nvidia-h200.json \
        --readme README.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from _results import write_results  # benchmarks/_results.py (run as a script)
from _tables import render_markdown, update_readme

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("sinkhorn", "ram", "lazsl", "lico", "otfusion")


@dataclass
class Context:
    device: torch.device
    smoke: bool
    scratch: Path
    repeats: int

    def out(self, name: str) -> str:
        return str(self.scratch / f"{name}.json")


# ----------------------------------------------------------------------------------- sections


def section_sinkhorn(ctx: Context) -> dict:
    import sinkhorn as bench  # benchmarks/sinkhorn.py

    argv = ["--device", ctx.device.type, "--fast", "--repeats", str(ctx.repeats)]
    return bench.main(argv + ["--smoke"] * ctx.smoke + ["--out", ctx.out("sinkhorn")])


def section_ram(ctx: Context) -> dict:
    import ram_step as bench  # benchmarks/ram_step.py

    argv = ["--device", ctx.device.type, "--precision", "bf16", "--in-process"]
    argv += ["--model", "ramlico-tiny-ViT", "--steps", "1", "--warmup", "0"] if ctx.smoke else [
        "--model", "ViT-B-16-quickgelu", "--steps", "10", "--warmup", "3"]  # fmt: skip
    train_batch, infer_batch = ("2", "4") if ctx.smoke else ("32", "512")
    train = bench.main(argv + ["--batch", train_batch, "--mode", "baseline", "train",
                               "--out", ctx.out("ram_train")])  # fmt: skip
    infer = bench.main(argv + ["--batch", infer_batch, "--mode", "baseline", "infer",
                               "--out", ctx.out("ram_infer")])  # fmt: skip
    return {"rows": train + infer}


def section_lazsl(ctx: Context) -> dict:
    import lazsl as bench  # benchmarks/lazsl.py

    argv = ["--device", ctx.device.type, "--out", ctx.out("lazsl")]
    if ctx.smoke:
        argv += ["--model", "ramlico-tiny-ViT", "--images", "2", "--batch", "1", "--classes",
                 "20", "--crops", "4", "--text-sample", "8"]  # fmt: skip
    else:
        argv += ["--model", "ViT-B-16", "--images", "64", "--batch", "8", "--classes", "1000",
                 "--crops", "90", "--precision", "bf16", "--crop-mode", "tensor"]  # fmt: skip
    return bench.main(argv)


def section_lico(ctx: Context) -> dict:
    import lico_step as bench  # benchmarks/lico_step.py

    argv = ["--device", ctx.device.type, "--out", ctx.out("lico")]
    if ctx.smoke:
        argv += ["--backbone", "test_resnet", "--text-model", "ramlico-tiny-ViT", "--batch",
                 "4", "--image-size", "32", "--classes", "10", "--steps", "1", "--warmup",
                 "0"]  # fmt: skip
    else:
        argv += ["--steps", "10", "--warmup", "2", "--amp"]
    return bench.main(argv)


def section_otfusion(ctx: Context) -> dict:
    import otfusion as bench  # benchmarks/otfusion.py

    size = ["--n", "500", "--k", "10", "--rounds", "2"] if ctx.smoke else ["--n", "50000"]
    return bench.main(["--device", ctx.device.type, "--out", ctx.out("otfusion"), *size])


RUNNERS: dict[str, Callable[[Context], dict]] = {
    "sinkhorn": section_sinkhorn,
    "ram": section_ram,
    "lazsl": section_lazsl,
    "lico": section_lico,
    "otfusion": section_otfusion,
}


# ------------------------------------------------------------------------------- the driver


def run_cuda_tests(paths: list[str], timeout: float) -> dict:
    """``pytest -m gpu`` on ``paths`` in a subprocess; counts, exit code and the output's tail."""
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rfE", "-p", "no:cacheprovider",
           *paths]  # fmt: skip
    # a fresh session, also when this script runs inside a pytest(-xdist) worker
    inherited = ("PYTEST_XDIST", "PYTEST_CURRENT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    # pytest's summary is the last line of its stdout (plugins may warn on stderr after it)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", summary):
        counts["errors" if word.startswith("error") else word] = int(number)
    return {
        "command": "python -m pytest -m gpu " + " ".join(paths),
        "rc": proc.returncode,
        **counts,
        "seconds": time.perf_counter() - start,
        "output_tail": out[-4000:] if proc.returncode else out[-300:],
    }


def environment(device: torch.device, smoke: bool) -> dict:
    """Where and with what the suite ran."""
    meta = {
        "suite": "benchmarks/gpu_suite.py",
        "device": device.type,
        "gpu": None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "smoke": smoke,
        "command": "benchmarks/gpu_suite.sh" if not smoke else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta |= {
            "gpu": props.name,
            "gpu_memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
        }
    return meta


def _commit() -> str | None:
    """The checkout's commit (``RAMLICO_COMMIT`` when the copy has no ``.git``)."""
    if os.environ.get("RAMLICO_COMMIT"):
        return os.environ["RAMLICO_COMMIT"]
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def default_out(device: torch.device, smoke: bool) -> Path:
    """``gpu_<gpu name>.json`` for a real GPU run (kept in git), ``smoke_<device>.json`` else."""
    if device.type == "cuda" and not smoke:
        name = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
        return ROOT / "benchmarks" / "results" / f"gpu_{name}.json"
    return ROOT / "benchmarks" / "results" / f"smoke_{device.type}.json"


def _save(results: dict, out: Path) -> str:
    write_results(results, out, indent=1)
    table = render_markdown(results)
    out.with_suffix(".md").write_text(table)
    return table


def run_suite(opts: argparse.Namespace) -> int:
    device = torch.device(opts.device)
    out = Path(opts.out) if opts.out else default_out(device, opts.smoke)
    results: dict = {"meta": environment(device, opts.smoke), "errors": {}, "skipped": {}}
    start = time.perf_counter()
    if not opts.skip_tests:
        print(f"[gpu_suite] pytest -m gpu {' '.join(opts.tests)}", flush=True)
        results["tests"] = tests = run_cuda_tests(opts.tests, timeout=opts.budget_s)
        print(f"[gpu_suite] tests: {tests['passed']} passed, {tests['failed']} failed, "
              f"{tests['skipped']} skipped ({tests['seconds']:.0f} s)", flush=True)  # fmt: skip
        if tests["rc"] != 0 or (device.type == "cuda" and tests["passed"] == 0):
            print(tests["output_tail"], flush=True)
            results["meta"]["seconds"] = time.perf_counter() - start
            _save(results, out)
            print(f"[gpu_suite] CUDA tests failed: no benchmark ran; wrote {out}", flush=True)
            return 1
    with tempfile.TemporaryDirectory() as scratch:
        ctx = Context(device, opts.smoke, Path(scratch), opts.repeats)
        for name in opts.sections:
            elapsed = time.perf_counter() - start
            if elapsed > opts.budget_s:
                results["skipped"][name] = f"time budget of {opts.budget_s:.0f} s spent"
                continue
            print(f"[gpu_suite] {name} (at {elapsed:.0f} s)", flush=True)
            t0 = time.perf_counter()
            try:
                results[name] = RUNNERS[name](ctx)
            except Exception:  # record, go on: the other sections' figures still count
                results["errors"][name] = traceback.format_exc()[-4000:]
                print(results["errors"][name], flush=True)
            results.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
            results["meta"]["seconds"] = time.perf_counter() - start
            _save(results, out)
    table = _save(results, out)
    print(table, flush=True)
    print(f"[gpu_suite] wrote {out} and {out.with_suffix('.md')} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    return 2 if results["errors"] else 0


def render(path: Path, readme: Path | None) -> int:
    table = render_markdown(json.loads(path.read_text()))
    print(table, end="")
    if readme is not None:
        readme.write_text(update_readme(readme.read_text(), table))
        print(f"[gpu_suite] updated the GPU block of {readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="toy sizes (CPU: about a minute)")
    parser.add_argument("--out", default=None, help="JSON path (markdown next to it, .md)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--tests", nargs="+", default=["tests"], help="paths for pytest -m gpu")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per Sinkhorn case")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="start no section after this many seconds")  # fmt: skip
    parser.add_argument("--render", type=Path, default=None, help="print the tables of a JSON")
    parser.add_argument("--readme", type=Path, default=None, help="with --render: update it")
    opts = parser.parse_args(argv)
    if opts.render is not None:
        return render(opts.render, opts.readme)
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device; use --device cpu --smoke")
    return run_suite(opts)


if __name__ == "__main__":
    sys.exit(main())
