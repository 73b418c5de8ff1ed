"""Time ramlico's Sinkhorn engine against POT (torch backend) and a plain batched log-domain loop.

Every implementation runs the same fixed number of iterations (no tolerance) on the same
problems, so the times compare the cost of an iteration. For each case the script prints the
median wall time over ``--repeats`` runs, the iteration count and the ratio of every baseline's
time to the engine's (``> 1`` = the engine is faster), and writes all figures to JSON.

Cases are the four methods' problem sizes (docs/sinkhorn.md, "Problem sizes"). On CPU the
LaZSL and OTFusion cases are large; ``--quick`` shrinks them (and says so in the table).

Usage::

    python benchmarks/sinkhorn.py                     # CPU (and CUDA when present)
    python benchmarks/sinkhorn.py --device cpu --quick --cases ram_coco_gzsl
"""

from __future__ import annotations

import argparse
import functools
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from _results import write_results  # benchmarks/_results.py (run as a script)

from ramlico.ot import sinkhorn


@dataclass
class Case:
    name: str
    batch: tuple[int, ...]  # leading dims
    n: int
    m: int
    reg: float
    iters: int
    note: str = ""


CASES = {
    "ram_coco_zsl": Case("ram_coco_zsl", (32,), 196, 17, 0.1, 100),
    "ram_coco_gzsl": Case("ram_coco_gzsl", (32,), 196, 65, 0.1, 100),
    "ram_nus_gzsl": Case("ram_nus_gzsl", (32,), 196, 1006, 0.1, 100),
    "lazsl_imagenet": Case("lazsl_imagenet", (32, 1000), 91, 16, 0.1, 100),
    "lico_resnet50": Case("lico_resnet50", (128,), 2048, 12, 0.1, 100),
    "otfusion_imagenet": Case("otfusion_imagenet", (1,), 50_000, 1000, 0.01, 4),
}
QUICK = {  # smaller variants for a CPU in a hurry; the table names the size used
    "lazsl_imagenet": Case("lazsl_imagenet", (32, 100), 91, 16, 0.1, 100, "100 of 1000 classes"),
    "otfusion_imagenet": Case("otfusion_imagenet", (1,), 10_000, 1000, 0.01, 4, "10k of 50k rows"),
}
SMOKE = {  # toy sizes of every case: the code paths, not the figures
    "ram_coco_zsl": Case("ram_coco_zsl", (4,), 16, 5, 0.1, 10, "smoke"),
    "ram_coco_gzsl": Case("ram_coco_gzsl", (4,), 16, 9, 0.1, 10, "smoke"),
    "ram_nus_gzsl": Case("ram_nus_gzsl", (4,), 16, 40, 0.1, 10, "smoke"),
    "lazsl_imagenet": Case("lazsl_imagenet", (2, 10), 9, 4, 0.1, 10, "smoke"),
    "lico_resnet50": Case("lico_resnet50", (4,), 64, 4, 0.1, 10, "smoke"),
    "otfusion_imagenet": Case("otfusion_imagenet", (1,), 500, 20, 0.01, 4, "smoke"),
}
# POT's per-problem loop is only run where it finishes in reasonable time.
MAX_LOOPED_PROBLEMS = 256


def make_problem(case: Case, device: torch.device, seed: int = 0):
    """Costs in [0, 2] like cosine costs, strictly positive random marginals summing to 1."""
    gen = torch.Generator().manual_seed(seed)
    cost = 1.0 - torch.rand((*case.batch, case.n, case.m), generator=gen) * 2 + 1.0
    a = torch.rand((*case.batch, case.n), generator=gen) + 0.1
    b = torch.rand((*case.batch, case.m), generator=gen) + 0.1
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    return cost.to(device), a.to(device), b.to(device)


def plain_log_loop(cost, a, b, reg, iters):
    """The textbook batched log-domain loop (rows first), the baseline the engine must beat."""
    log_k = -cost / reg
    log_a, log_b = a.log(), b.log()
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    for _ in range(iters):
        f = log_a - torch.logsumexp(log_k + g.unsqueeze(-2), dim=-1)
        g = log_b - torch.logsumexp(log_k + f.unsqueeze(-1), dim=-2)
    return torch.exp(log_k + f.unsqueeze(-1) + g.unsqueeze(-2))


def implementations(
    case: Case, device: torch.device | None = None, fast: bool = False
) -> dict[str, Callable]:
    """Name -> ``fn(cost, a, b)``; the engine's default (``fast="off"``) is ``"ramlico"``."""
    import ot  # POT

    def engine(c, a, b, mode="off"):
        return sinkhorn(c, a, b, case.reg, max_iter=case.iters, fast=mode).plan

    def engine_log(c, a, b):
        return sinkhorn(c, a, b, case.reg, max_iter=case.iters, method="log", fast="off").plan

    def pot_looped(c, a, b):
        c2, a2, b2 = c.reshape(-1, case.n, case.m), a.reshape(-1, case.n), b.reshape(-1, case.m)
        return [
            ot.sinkhorn(a2[i], b2[i], c2[i], case.reg, numItermax=case.iters, stopThr=0, warn=False)
            for i in range(c2.shape[0])
        ]

    def pot_batch(c, a, b):
        c2, a2, b2 = c.reshape(-1, case.n, case.m), a.reshape(-1, case.n), b.reshape(-1, case.m)
        return ot.batch.solve_batch(
            c2, reg=case.reg, a=a2, b=b2, max_iter=case.iters, tol=0, method="log_sinkhorn"
        ).plan

    impls: dict[str, Callable] = {"ramlico": engine, "ramlico (log)": engine_log}
    if fast and device is not None and device.type == "cuda":
        impls["ramlico (graph)"] = functools.partial(engine, mode="graph")
    cxx = any(shutil.which(c) for c in ("g++", "c++", "clang++"))  # inductor's CPU backend
    if fast and (cxx or (device is not None and device.type == "cuda")):
        impls["ramlico (compiled)"] = functools.partial(engine, mode="compile")
    impls["plain log loop"] = lambda c, a, b: plain_log_loop(c, a, b, case.reg, case.iters)
    n_problems = 1
    for d in case.batch:
        n_problems *= d
    if n_problems <= MAX_LOOPED_PROBLEMS:
        impls["POT looped (sinkhorn)"] = pot_looped
    if hasattr(ot, "batch"):
        impls["POT batch (log)"] = pot_batch
    return impls


def timed(fn: Callable, args, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median milliseconds over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn(*args)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, mib: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a device-to-device copy, counting bytes read and written."""
    src = torch.empty(mib * 2**18, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    ms = timed(lambda: dst.copy_(src), (), device, repeats)
    return 2 * src.numel() * src.element_size() / (ms / 1e3)


def floor_ms(case: Case, bandwidth: float) -> float:
    """Memory-bandwidth floor: ``iters`` passes reading the fp32 kernel twice (8 B per entry)."""
    entries = case.n * case.m
    for d in case.batch:
        entries *= d
    return case.iters * 8 * entries / bandwidth * 1e3


def run_case(
    case: Case, device: torch.device, repeats: int, fast: bool = False, bandwidth: float = 0.0
) -> list[dict]:
    args = make_problem(case, device)
    rows = []
    for name, fn in implementations(case, device, fast).items():
        reps = 1 if name.startswith("POT looped") or case.n * case.m > 10**7 else repeats
        # The fast paths compile / capture a graph on the first two calls of a shape.
        ms = timed(
            fn, args, device, reps, warmup=2 if "(graph)" in name or "(compiled)" in name else 1
        )
        rows.append({"case": case.name, "impl": name, "median_ms": ms, "iters": case.iters})
    ours = next(r["median_ms"] for r in rows if r["impl"] == "ramlico")
    floor = floor_ms(case, bandwidth) if bandwidth else None
    for r in rows:
        r["speedup_of_ramlico"] = r["median_ms"] / ours
        r["shape"] = f"{'x'.join(map(str, case.batch))}x{case.n}x{case.m}"
        r["note"] = case.note
        r["device"] = str(device)
        r["floor_ms"] = floor
        r["x_floor"] = r["median_ms"] / floor if floor else None
    return rows


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'case':<18} {'shape':<18} {'impl':<22} {'median ms':>10} {'iters':>5} {'x ramlico':>9}"
        f" {'x floor':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        x_floor = f"{r['x_floor']:>8.1f}" if r.get("x_floor") else f"{'':>8}"
        print(
            f"{r['case']:<18} {r['shape']:<18} {r['impl']:<22} {r['median_ms']:>10.2f} "
            f"{r['iters']:>5} {r['speedup_of_ramlico']:>9.2f} {x_floor}"
            + (f"  ({r['note']})" if r["note"] else "")
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="shrink LaZSL/OTFusion on CPU")
    parser.add_argument("--smoke", action="store_true", help="toy sizes of every case")
    parser.add_argument("--fast", action="store_true", help="also time the fast paths")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sinkhorn.json"))
    opts = parser.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    devices = [torch.device("cpu")] if opts.device in ("cpu", "all") else []
    if opts.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows: list[dict] = []
    bandwidth = {}
    for device in devices:
        bandwidth[str(device)] = copy_bandwidth(device, mib=16 if opts.smoke else 256)
        for name in opts.cases:
            case = CASES[name]
            if opts.smoke:
                case = SMOKE[name]
            elif opts.quick and device.type == "cpu":
                case = QUICK.get(name, case)
            rows.extend(run_case(case, device, opts.repeats, opts.fast, bandwidth[str(device)]))
    print_table(rows)
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "copy_bandwidth_gb_s": {k: v / 1e9 for k, v in bandwidth.items()},
    }
    result = {"meta": meta, "rows": rows}
    write_results(result, opts.out, indent=2)
    print(f"wrote {opts.out}")
    return result


if __name__ == "__main__":
    main()
