"""Time one LICO training step against the CE baseline on the same network and batch.

Both steps are a full optimisation step (forward, backward, SGD update) of :class:`LICOModule`
on the same random batch: the baseline with ``lico.enabled=false`` (CE only), LICO with the
paper's settings (12 prompt variants x 12 context tokens through the CLIP ViT-B/32 text tower,
mapping MLP, MM + OT losses, 100 Sinkhorn iterations). The text tower is randomly initialised
(same architecture and cost as the OpenAI weights; nothing is downloaded). Labels are drawn
from ``--classes`` classes, so a batch of 64 ImageNet images has ~62 unique classes, i.e.
12 x 62 prompt sequences per step.

The figure of merit is the overhead ratio ``t_LICO / t_CE`` measured in the same run: CE and
LICO steps alternate and the median of the per-pair ratios is reported, so drifting machine load
hits both alike. The script also times LICO's parts (text tower, OT) separately, and the
per-label Grad-CAM heatmaps of ``label_scores`` (region evidence, ``ramlico-predict``): one
forward pass for ``--heatmap-classes`` classes against the package's forward + backward per
class (``heatmap_speedup``, the ratio of the two in the same run). Writes JSON.

Usage::

    python benchmarks/lico_step.py                          # ResNet-50, batch 64, CPU
    python benchmarks/lico_step.py --device cuda --steps 20
    python benchmarks/lico_step.py --backbone resnet18 --image-size 112 --steps 2   # quick
    python benchmarks/lico_step.py --backbone test_resnet --text-model ramlico-tiny-ViT \
        --image-size 64 --batch 128 --classes 20 --heatmap-classes 20    # the toy demo's sizes
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time
from pathlib import Path

import torch
from _results import write_results  # benchmarks/_results.py (run as a script)

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.explain import SaliencyExplainer
from ramlico.explain.saliency import gradcam_per_class
from ramlico.losses.lico import ot_alignment_loss
from ramlico.methods.lico import LICOModule


def build(args: argparse.Namespace, enabled: bool, device: torch.device) -> LICOModule:
    torch.manual_seed(0)
    encoder = TimmBackbone(args.backbone)
    text = functools.partial(CLIPBackbone, args.text_model, pretrained=None,
                             force_quick_gelu=True)  # fmt: skip
    module = LICOModule(
        encoder,
        functools.partial(torch.optim.SGD, lr=0.03, momentum=0.9, weight_decay=1e-4),
        text_encoder=text,
        lico=dict(enabled=enabled, n_ctx=args.n_ctx),
        image_size=args.image_size,
    )
    module.build([f"class number {i}" for i in range(args.classes)], with_text=True)
    return module.to(device).train()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, steps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def train_step(module: LICOModule, opt: torch.optim.Optimizer, batch, amp: bool) -> None:
    """What ``LICOModule.training_step`` computes (without logging), then backward + SGD."""
    images, labels = batch
    opt.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
        maps, pooled = module.classifier.features(images)
        loss = torch.nn.functional.cross_entropy(module.classifier.head(pooled), labels)
        if module.hp.enabled:
            parts = module.lico_losses(maps, pooled, labels)
            loss = loss + module.hp.alpha * parts["mm"] + module.hp.beta * parts["ot"]
    loss.backward()
    opt.step()


def heatmap_times(
    module: LICOModule, images: torch.Tensor, n_classes: int, args: argparse.Namespace
) -> dict:
    """Grad-CAM maps of ``n_classes`` classes for every image: one pass vs class by class."""
    if n_classes <= 0:
        return {}
    net = module.export().eval()
    classes = list(range(n_classes))
    explainer = SaliencyExplainer(net, "gradcam")

    def package_loop() -> None:
        for c in classes:
            explainer(images, [c] * images.shape[0])

    def one_pass() -> None:
        gradcam_per_class(net, images, classes)

    times: dict[str, list[float]] = {"loop": [], "pass": []}
    for i in range(args.warmup + args.steps):  # interleaved, as the training steps
        loop_t, pass_t = (
            timed(package_loop, images.device, 1, 0)[0],
            timed(one_pass, images.device, 1, 0)[0],
        )
        if i >= args.warmup:
            times["loop"].append(loop_t)
            times["pass"].append(pass_t)
    ratios = [a / b for a, b in zip(times["loop"], times["pass"], strict=True)]
    return {
        "heatmap_classes": n_classes,
        "heatmap_package_loop_s": statistics.median(times["loop"]),
        "heatmap_per_class_s": statistics.median(times["pass"]),
        "heatmap_speedup": statistics.median(ratios),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--text-model", default="ViT-B-32")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--n-ctx", type=int, default=12)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument(
        "--heatmap-classes",
        type=int,
        default=4,
        help="classes per image of the Grad-CAM heatmap timing (0: skip it)",
    )
    p.add_argument("--out", default="benchmarks/results/lico_step.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size, generator=gen)
    labels = torch.randint(0, args.classes, (args.batch,), generator=gen)
    batch = (images.to(device), labels.to(device))

    modules = {"ce": build(args, False, device), "lico": build(args, True, device)}
    steps = {name: functools.partial(train_step, m, m.configure_optimizers(), batch, args.amp)
             for name, m in modules.items()}  # fmt: skip
    # Interleave the two so that drifting machine load hits both alike; the ratio is taken per
    # CE/LICO pair and its median reported.
    times: dict[str, list[float]] = {"ce": [], "lico": []}
    for i in range(args.warmup + args.steps):
        for name, fn in steps.items():
            t = timed(fn, device, 1, 0)[0]
            if i >= args.warmup:
                times[name].append(t)
    results = {name: statistics.median(t) for name, t in times.items()}
    pair_ratios = [tl / tc for tc, tl in zip(times["ce"], times["lico"], strict=True)]
    for name in ("ce", "lico"):
        print(f"{name:5s} step: median {results[name]:.3f} s over {args.steps} steps "
              f"({', '.join(f'{t:.2f}' for t in times[name])})")  # fmt: skip

    lico = modules["lico"]
    classes, inverse = torch.unique(batch[1], return_inverse=True)
    perm = torch.randperm(args.n_ctx, device=device)

    def text_part():
        feats = lico.lico_train["prompts"](classes, perm)
        feats.sum().backward()

    with torch.no_grad():
        maps, _ = lico.classifier.features(batch[0])
    mapped = torch.randn(args.batch, args.n_ctx, maps.shape[-1], device=device)

    def ot_part():
        m = maps.clone().requires_grad_()
        loss, _ = ot_alignment_loss(m, mapped)  # LICO_SOLVER: eps 0.1, 100 iterations
        loss.backward()

    text_t = statistics.median(timed(text_part, device, args.steps, 1))
    ot_t = statistics.median(timed(ot_part, device, args.steps, 1))
    heatmaps = heatmap_times(lico, batch[0], min(args.heatmap_classes, args.classes), args)
    ratio = statistics.median(pair_ratios)
    n_ce = sum(p.numel() for p in modules["ce"].export().parameters())
    n_lico = sum(p.numel() for p in lico.export().parameters())
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "backbone": args.backbone, "text_model": args.text_model, "batch": args.batch,
        "image_size": args.image_size, "classes": args.classes,
        "unique_classes_in_batch": int(classes.numel()), "n_ctx": args.n_ctx,
        "prompt_sequences_per_step": int(classes.numel()) * args.n_ctx,
        "feature_map": list(maps.shape[1:]), "amp": args.amp, "steps": args.steps,
        "ce_step_s": results["ce"], "lico_step_s": results["lico"], "overhead_ratio": ratio,
        "ce_steps_s": times["ce"], "lico_steps_s": times["lico"], "pair_ratios": pair_ratios,
        "text_tower_fwd_bwd_s": text_t, "ot_loss_fwd_bwd_s": ot_t,
        "inference_params_ce": n_ce, "inference_params_lico": n_lico, **heatmaps,
    }  # fmt: skip
    print(f"overhead ratio LICO / CE = {ratio:.2f}x  (text tower {text_t:.3f} s, OT {ot_t:.3f} s; "
          f"{report['prompt_sequences_per_step']} prompt sequences; inference params "
          f"{n_ce} vs {n_lico})")  # fmt: skip
    if heatmaps:
        print(f"Grad-CAM of {heatmaps['heatmap_classes']} classes x {args.batch} images: "
              f"{heatmaps['heatmap_per_class_s']:.3f} s in one pass vs "
              f"{heatmaps['heatmap_package_loop_s']:.3f} s class by class "
              f"({heatmaps['heatmap_speedup']:.1f}x)")  # fmt: skip
    out = Path(args.out)
    write_results(report, out, indent=2)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
