"""LaZSL throughput at ImageNet scale: images/s and the split between encoder and OT time.

Mirrors :meth:`ramlico.methods.LaZSL.predict_scores` step by step. Per image LaZSL encodes
1 global view + N crops with CLIP and solves K entropic OT problems (N crops x M_max descriptors
each) in one engine call. This script times, per batch of images:

* ``crop``: making the global view and the N seeded crops of the original image (``--width`` x
  ``--height``, ImageNet's mean size by default) with :class:`ramlico.zeroshot.crops.CropViews`:
  ``--crop-mode pil`` = PIL crop + CLIP preprocess per crop (the loader workers' CPU work, in
  parallel over ``num_workers`` in a real run), ``tensor`` = resized crops on ``--device``;
* ``encoder``: the CLIP image forward of the 1 + N views (random weights: same cost as trained);
* ``ot``: :func:`ramlico.zeroshot.lazsl_scores` over all K classes (reference stopping);

plus, once, the text encoding of the descriptor sentences (extrapolated from a sample). Random
unit descriptor embeddings with M_k in [2, 11] (ImageNet's range, mean about 6.5) stand in for the
text side of the OT step. Writes JSON.

    python benchmarks/lazsl.py --quick                 # CPU: 2 images (1 timed), minutes
    python benchmarks/lazsl.py --device cuda --images 512 --batch 32 --precision bf16 \
        --crop-mode tensor
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _results import write_results  # benchmarks/_results.py (run as a script)
from PIL import Image

from ramlico.backbones import CLIPBackbone
from ramlico.zeroshot import lazsl_scores
from ramlico.zeroshot.crops import CropViews, resize_crops


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _descriptors(k: int, m_max: int, dim: int, gen: torch.Generator) -> tuple:
    counts = torch.randint(2, m_max + 1, (k,), generator=gen)
    mask = torch.arange(m_max)[None] < counts[:, None]
    feats = F.normalize(torch.randn(k, m_max, dim, generator=gen), dim=-1) * mask[..., None]
    return feats, mask


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--crops", type=int, default=90)
    parser.add_argument("--m-max", type=int, default=11)
    parser.add_argument("--class-chunk", type=int, default=None)
    parser.add_argument("--text-sample", type=int, default=256, help="sentences timed")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--crop-mode", choices=["pil", "tensor"], default="pil")
    parser.add_argument("--width", type=int, default=500, help="original image width")
    parser.add_argument("--height", type=int, default=375, help="original image height")
    parser.add_argument("--quick", action="store_true", help="2 images, batch 1 (CPU)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lazsl.json"))
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.images, opts.batch, opts.text_sample = 2, 1, 64
    dev = torch.device(opts.device)
    backbone = CLIPBackbone(opts.model, pretrained=None, init_seed=0).to(dev)
    pre = backbone.preprocess()
    views_of = CropViews(pre, opts.crops, mode=opts.crop_mode)
    gen = torch.Generator().manual_seed(0)
    desc, mask = _descriptors(opts.classes, opts.m_max, backbone.embed_dim, gen)
    desc, mask = desc.to(dev), mask.to(dev)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[opts.precision]
    times = {"crop": 0.0, "encoder": 0.0, "ot": 0.0}
    cpu = dict.fromkeys(times, 0.0)  # process CPU seconds (all threads): robust to a busy host
    done = 0
    with torch.no_grad():
        for _ in range(0, opts.images, opts.batch):
            pixels = torch.randint(0, 256, (opts.batch, opts.height, opts.width, 3), generator=gen)
            originals = [Image.fromarray(p.to(torch.uint8).numpy()) for p in pixels]
            _sync(dev)
            t0, c0 = time.perf_counter(), time.process_time()
            views = [views_of(img, done + i) for i, img in enumerate(originals)]
            glob_px = torch.stack([v.views[0] for v in views]).to(dev)
            if opts.crop_mode == "pil":
                crop_px = torch.cat([v.views[1:] for v in views]).to(dev)
            else:
                crop_px = torch.cat([resize_crops(v.original.to(dev), v.boxes, pre.size)
                                     for v in views])  # fmt: skip
            images, crops = pre.normalize(glob_px), pre.normalize(crop_px)
            _sync(dev)
            t1, c1 = time.perf_counter(), time.process_time()
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                glob = backbone.embed_image(images)
                feats = torch.cat([backbone.embed_image(c) for c in crops.split(256)])
            glob = F.normalize(glob.float(), dim=-1)
            feats = F.normalize(feats.float(), dim=-1).reshape(opts.batch, opts.crops, -1)
            _sync(dev)
            t2, c2 = time.perf_counter(), time.process_time()
            lazsl_scores(glob, feats, desc, mask, class_chunk=opts.class_chunk, warn=False)
            _sync(dev)
            t3, c3 = time.perf_counter(), time.process_time()
            if done > 0 or opts.images <= opts.batch:  # the first batch warms up
                for name, (w, c) in zip(times, ((t1 - t0, c1 - c0), (t2 - t1, c2 - c1),
                                                (t3 - t2, c3 - c2)), strict=True):  # fmt: skip
                    times[name] += w
                    cpu[name] += c
            done += opts.batch
        timed = done - opts.batch if opts.images > opts.batch else done
        sentences = [f"class {i}, which has feature {i % 7}" for i in range(opts.text_sample)]
        _sync(dev)
        t0 = time.perf_counter()
        for chunk in range(0, len(sentences), 64):
            backbone.encode_text(backbone.tokenize(sentences[chunk : chunk + 64]).to(dev))
        _sync(dev)
        text_per_sentence = (time.perf_counter() - t0) / len(sentences)
    total = sum(times.values())
    row = {
        "model": opts.model, "device": str(dev), "precision": opts.precision,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"torch {torch.__version__}, threads {torch.get_num_threads()}",
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "images_timed": timed, "batch": opts.batch, "classes": opts.classes,
        "crop_mode": opts.crop_mode, "original_size": [opts.width, opts.height],
        "crops": opts.crops, "m_max": opts.m_max,
        "images_per_s": timed / total,
        "seconds_per_image": {k: v / timed for k, v in times.items()},
        "share": {k: v / total for k, v in times.items()},
        "cpu_seconds_per_image": {k: v / timed for k, v in cpu.items()},
        "load_average_1min": os.getloadavg()[0],
        "text_seconds_per_sentence": text_per_sentence,
        "text_seconds_imagenet_5800_sentences": 5800 * text_per_sentence,
        "imagenet_val_hours": 50_000 * total / timed / 3600,
    }  # fmt: skip
    print(json.dumps(row, indent=1))
    write_results(row, opts.out)
    return row


if __name__ == "__main__":
    main()
