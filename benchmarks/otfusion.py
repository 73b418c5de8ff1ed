"""Time and peak memory of OTFusion's transductive fusion (features given) at ImageNet scale.

Random unit features stand in for CLIP (512-d) and DINOv2 (768-d) embeddings; the work per round
does not depend on their values. Prints seconds per round and the peak resident memory (CPU,
``resource.ru_maxrss``) or peak CUDA memory, and writes JSON.

    python benchmarks/otfusion.py                       # 50,000 x 1,000, 9 rounds
    python benchmarks/otfusion.py --n 5000 --rounds 2   # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from _results import write_results  # benchmarks/_results.py (run as a script)

from ramlico.zeroshot import otfusion_predict


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/otfusion.json"))
    opts = parser.parse_args(argv)
    dev = torch.device(opts.device)
    gen = torch.Generator().manual_seed(0)
    clip = torch.randn(opts.n, 512, generator=gen).to(dev)
    text = torch.randn(opts.k, 512, generator=gen).to(dev)
    dino = torch.randn(opts.n, 768, generator=gen).to(dev)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    otfusion_predict(clip, text, dino, rounds=opts.rounds)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    row = {
        "n": opts.n, "k": opts.k, "rounds": opts.rounds, "device": str(dev),
        "seconds": seconds, "seconds_per_round": seconds / opts.rounds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "rss_before_gib": before,
        "peak_cuda_gib": (
            torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
        ),
    }  # fmt: skip
    print(json.dumps(row, indent=1))
    write_results(row, opts.out)
    return row


if __name__ == "__main__":
    main()
