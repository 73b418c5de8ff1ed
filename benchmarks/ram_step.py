"""RAM training-step and inference throughput and peak memory (ViT-B/16, 224 px, random weights).

Each configuration (train / infer x fp32 / bf16 autocast) runs in its own subprocess, so the CPU
peak resident memory (``ru_maxrss``) belongs to it; on CUDA the peak allocated memory is reset per
configuration, so ``--in-process`` (no re-import per configuration; what the GPU suite uses)
gives the same figures there. The baseline of the same run is frozen CLIP zero-shot inference
(global embedding x prompt classifier) at the same batch size: ratios are against it.

    python benchmarks/ram_step.py                       # CUDA if present, else CPU
    python benchmarks/ram_step.py --device cpu --steps 1 --warmup 1
    python benchmarks/ram_step.py --model ramlico-tiny-ViT --batch 8   # smoke
    python benchmarks/ram_step.py --device cuda --precision bf16 --mode baseline train --in-process
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import hydra
import torch
from _results import write_results  # benchmarks/_results.py (run as a script)
from omegaconf import OmegaConf

import ramlico
from ramlico.backbones import CLIPBackbone
from ramlico.data.labels import COCO_SEEN, COCO_UNSEEN
from ramlico.losses import mmc_loss
from ramlico.methods import RAM

MODES = ("baseline", "infer", "train")
PRECISIONS = ("fp32", "bf16")


def _reference_optimizer() -> dict:
    """The optimiser factories of configs/model/ram.yaml (the reference recipe)."""
    cfg = OmegaConf.load(Path(ramlico.__file__).parent / "configs" / "model" / "ram.yaml")
    return hydra.utils.instantiate(cfg.optimizer, _convert_="all")


def _build(opts, device: torch.device) -> RAM:
    backbone = CLIPBackbone(opts.model, pretrained=None)
    n = len(backbone.model.visual.transformer.resblocks)
    last3 = [n - 3, n - 2, n - 1] if n >= 3 else list(range(n))
    model = RAM(
        backbone,
        saa_layers=list(range(n)),
        tss_layers=last3,
        visual_prompt_layers=last3,
        text_prompt_layers=last3,
        optimizer=_reference_optimizer(),
    )
    return model.to(device)


def _single(opts) -> dict:
    device = torch.device(opts.device)
    torch.manual_seed(0)
    model = _build(opts, device)
    size = model.backbone.image_size
    images = torch.randn(opts.batch, 3, size, size, device=device)
    seen, gzsl = list(COCO_SEEN), list(COCO_SEEN) + list(COCO_UNSEEN)
    targets = (torch.rand(opts.batch, len(seen), device=device) < 0.06).float()
    targets[:, 0] = 1
    optimizer = model.configure_optimizers()["optimizer"]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")
    classifier = model.backbone.zero_shot_classifier(gzsl)

    def step() -> None:
        if opts.mode == "train":
            model.train()
            with autocast:
                out = model(images, seen, targets=targets)
                loss = mmc_loss(out["s_glb"], targets) + mmc_loss(out["s_loc"], targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        elif opts.mode == "infer":
            model.eval()
            with torch.no_grad(), autocast:
                model.scores(images, gzsl)  # the scoring contract; label features cached once
        else:
            with torch.no_grad(), autocast:
                model.backbone.embed_image(images) @ classifier.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(opts.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(opts.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / opts.steps
    return {
        "mode": opts.mode, "precision": opts.precision, "model": opts.model,
        "batch": opts.batch, "image_size": size, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "seconds_per_step": seconds,
        "samples_per_s": opts.batch / seconds,
        "peak_mem_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        ),
        "memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16-quickgelu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=[*PRECISIONS, "both"], default="both")
    parser.add_argument("--mode", nargs="+", choices=[*MODES, "all"], default=["all"])
    parser.add_argument("--in-process", action="store_true", help="no subprocess per config")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ram_step.json"))
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.single:
        row = _single(opts)
        print(json.dumps(row))
        return [row]
    rows = []
    precisions = PRECISIONS if opts.precision == "both" else (opts.precision,)
    modes = MODES if "all" in opts.mode else tuple(m for m in MODES if m in opts.mode)
    for precision in precisions:
        for mode in modes:
            if opts.in_process:
                row = _single(argparse.Namespace(**{**vars(opts), "precision": precision,
                                                    "mode": mode}))  # fmt: skip
                _release(opts.device)
            else:
                row = _subprocess_row(opts, precision, mode)
            rows.append(row)
            print(
                f"{precision:5s} {mode:8s} {row['samples_per_s']:8.2f} samples/s  "
                f"{row['seconds_per_step']:7.3f} s/step  peak {row['peak_mem_gib']:.2f} GiB",
                flush=True,
            )
    for row in rows:
        base = next(
            (r for r in rows if r["mode"] == "baseline" and r["precision"] == row["precision"]),
            None,
        )
        row["throughput_vs_baseline"] = (
            row["samples_per_s"] / base["samples_per_s"] if base else None
        )
    write_results(rows, opts.out)
    return rows


def _subprocess_row(opts, precision: str, mode: str) -> dict:
    cmd = [
        sys.executable, __file__, "--single", "--model", opts.model,
        "--batch", str(opts.batch), "--steps", str(opts.steps),
        "--warmup", str(opts.warmup), "--device", opts.device,
        "--precision", precision, "--mode", mode,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _release(device: str) -> None:
    """Free the last configuration's memory before the next one (in-process runs)."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
