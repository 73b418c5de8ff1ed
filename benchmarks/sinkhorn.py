"""Time ramlico's Sinkhorn engine against POT (torch backend) and a plain batched log-domain loop.

Every implementation runs the same fixed number of iterations (no tolerance) on the same
problems, so the times compare the cost of an iteration. For each case the script prints the
median wall time over ``--repeats`` runs, the iteration count and the ratio of every baseline's
time to the engine's (``> 1`` = the engine is faster), and writes all figures to JSON.

Cases are the four methods' problem sizes from spec/sinkhorn.md (section 3.5). On CPU the
LaZSL and OTFusion cases are large; ``--quick`` shrinks them (and says so in the table).

Usage::

    python benchmarks/sinkhorn.py                     # CPU (and CUDA when present)
    python benchmarks/sinkhorn.py --device cpu --quick --cases ram_coco_gzsl
"""

from __future__ import annotations

import argparse
import platform
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


def implementations(case: Case) -> dict[str, Callable]:
    import ot  # POT

    def engine(c, a, b):
        return sinkhorn(c, a, b, case.reg, max_iter=case.iters).plan

    def engine_log(c, a, b):
        return sinkhorn(c, a, b, case.reg, max_iter=case.iters, method="log").plan

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

    impls = {"ramlico": engine, "ramlico (log)": engine_log, "plain log loop": plain_log_loop}
    impls["plain log loop"] = lambda c, a, b: plain_log_loop(c, a, b, case.reg, case.iters)
    n_problems = 1
    for d in case.batch:
        n_problems *= d
    if n_problems <= MAX_LOOPED_PROBLEMS:
        impls["POT looped (sinkhorn)"] = pot_looped
    if hasattr(ot, "batch"):
        impls["POT batch (log)"] = pot_batch
    return impls


def timed(fn: Callable, args, device: torch.device, repeats: int) -> float:
    """Median milliseconds over ``repeats`` runs after one warm-up run."""
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


def run_case(case: Case, device: torch.device, repeats: int) -> list[dict]:
    args = make_problem(case, device)
    rows = []
    for name, fn in implementations(case).items():
        reps = 1 if name.startswith("POT looped") or case.n * case.m > 10**7 else repeats
        ms = timed(fn, args, device, reps)
        rows.append({"case": case.name, "impl": name, "median_ms": ms, "iters": case.iters})
    ours = next(r["median_ms"] for r in rows if r["impl"] == "ramlico")
    for r in rows:
        r["speedup_of_ramlico"] = r["median_ms"] / ours
        r["shape"] = f"{'x'.join(map(str, case.batch))}x{case.n}x{case.m}"
        r["note"] = case.note
        r["device"] = str(device)
    return rows


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'case':<18} {'shape':<18} {'impl':<22} {'median ms':>10} {'iters':>5} {'x ramlico':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['case']:<18} {r['shape']:<18} {r['impl']:<22} {r['median_ms']:>10.1f} "
            f"{r['iters']:>5} {r['speedup_of_ramlico']:>9.2f}"
            + (f"  ({r['note']})" if r["note"] else "")
        )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="shrink LaZSL/OTFusion on CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sinkhorn.json"))
    opts = parser.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    devices = [torch.device("cpu")] if opts.device in ("cpu", "all") else []
    if opts.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows: list[dict] = []
    for device in devices:
        for name in opts.cases:
            case = (
                QUICK.get(name, CASES[name]) if opts.quick and device.type == "cpu" else CASES[name]
            )
            rows.extend(run_case(case, device, opts.repeats))
    print_table(rows)
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    write_results({"meta": meta, "rows": rows}, opts.out, indent=2)
    print(f"wrote {opts.out}")
    return rows


if __name__ == "__main__":
    main()
