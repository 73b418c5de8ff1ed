"""ONNX export of RAM inference: ``python -m ramlico.export CKPT --labels a,b,c --out ram.onnx``.

The exported graph maps ``images (B, 3, S, S)`` (normalised as in the run's data config) to

* ``scores (B, C)``  -- RAM's inference score ``(softmax(s_glb) + softmax(s_loc)) / 2``;
* ``logits (B, C)``  -- the per-label logit that calibration maps to probabilities;
* ``heatmaps (B, C, h, w)`` -- the OT plan's label columns on the patch grid (region evidence),

with everything inside: the frozen CLIP vision tower, the ladder side network, the label
embeddings of ``--labels`` (computed once by the prompted text tower and stored as constants),
and KCOT with a fixed number of log-domain Sinkhorn iterations (``--max-iter``, no
data-dependent stopping). A JSON sidecar (``<out>.json``) records the labels, the preprocessing
(image size, mean, std) and the calibration, so a runtime without ramlico can tag images:
``p = sigmoid(scale * logit + bias)``, tag where ``p >= threshold``.

``--check`` runs the file in onnxruntime on random inputs and prints the largest absolute
difference from the same module in PyTorch.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ramlico.methods.base import RamlicoModule
from ramlico.methods.ram import RAM

__all__ = ["RAMInference", "export_onnx", "main", "onnx_max_abs_diff"]

Tensor = torch.Tensor
OUTPUTS = ("scores", "logits", "heatmaps")


class RAMInference(nn.Module):
    """RAM inference over a fixed label list with fixed-iteration KCOT (what is exported).

    Args:
        model: a trained :class:`RAM` (weights loaded).
        labels: the ``C`` label names; their prompted text features are computed now.
        max_iter: Sinkhorn iterations of KCOT (RAM's cap, 100; its tolerance stop is dropped).
    """

    def __init__(self, model: RamlicoModule, labels: Sequence[str], max_iter: int = 100) -> None:
        super().__init__()
        if not isinstance(model, RAM):
            raise TypeError(f"ONNX export covers RAM inference; got {type(model).__name__}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.model: RAM = model.eval()
        self.labels = list(labels)
        # the plain log-domain loop: no CUDA graph / compiled fast path inside a trace
        fixed = replace(model.kcot.solver, tol=None, max_iter=max_iter, method="log",
                        check_every=None, fast="off")  # fmt: skip
        self.kcot = replace(model.kcot, solver=fixed)
        model.eval_label_features(self.labels)  # cached: the trace stores them as constants
        # inference mode for good (TSS BatchNorm statistics): the exporter restores the mode
        # the module had, and a wrapper starts in training mode
        self.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model.label_scores(images, self.labels, evidence=True, kcot=self.kcot)
        assert out.heatmaps is not None  # RAM's evidence: the plan's label columns
        return out.scores, out.logits, out.heatmaps


def export_onnx(module: RAMInference, path: str | Path, image_size: int, opset: int = 17) -> Path:
    """Trace ``module`` on a ``(1, 3, S, S)`` input and write ``path`` (batch size dynamic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, image_size, image_size)
    axes = {"images": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings():
        # the engine's input checks become constants of the trace (TracerWarning): expected
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # nn.MultiheadAttention's fused inference kernel has no ONNX form: trace the plain ops
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            torch.onnx.export(
                module, (example,), str(path), input_names=["images"],
                output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=opset, dynamo=False,
            )  # fmt: skip
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    return path


def onnx_max_abs_diff(path: str | Path, module: nn.Module, images: Tensor) -> dict[str, float]:
    """Largest ``|onnxruntime - PyTorch|`` of every output on ``images``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": images.numpy()})
    module.eval()
    with torch.no_grad():
        ref = module(images)
    return {name: float(abs(torch.from_numpy(g) - r).max())
            for name, g, r in zip(OUTPUTS, got, ref, strict=True)}  # fmt: skip


def _sidecar(built: Any, labels: list[str], max_iter: int) -> dict[str, Any]:
    data = built.config.get("data") or {}
    return {
        "labels": labels, "outputs": list(OUTPUTS), "kcot_iterations": max_iter,
        "image_size": int(data.get("image_size") or 224), "mean": data.get("mean"),
        "std": data.get("std"), "calibration": built.calibration.to_dict(),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    from rich.console import Console

    from ramlico.cli.predict import read_labels
    from ramlico.predict.build import build_from_checkpoint

    parser = argparse.ArgumentParser(prog="python -m ramlico.export", description=__doc__)
    parser.add_argument("checkpoint", help="a RAM checkpoint written by train.py")
    parser.add_argument("--labels", default=None, help="comma-separated (default: its test labels)")
    parser.add_argument("--labels-file", default=None, help="one label per line")
    parser.add_argument("--out", default="ram.onnx")
    parser.add_argument("--max-iter", type=int, default=100, help="KCOT Sinkhorn iterations")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--check", action="store_true", help="compare with PyTorch (onnxruntime)")
    args = parser.parse_args(argv)
    built = build_from_checkpoint(args.checkpoint)
    labels = read_labels(args.labels.split(",") if args.labels else None, args.labels_file,
                         built.labels)  # fmt: skip
    module = RAMInference(built.model, labels, args.max_iter)
    side = _sidecar(built, labels, args.max_iter)
    out = export_onnx(module, args.out, side["image_size"], args.opset)
    Path(f"{out}.json").write_text(json.dumps(side, indent=1))
    console = Console()
    console.print(f"wrote {out} and {out}.json ({len(labels)} labels, {side['image_size']} px)")
    if args.check:
        x = torch.randn(2, 3, side["image_size"], side["image_size"],
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
        console.print("max |onnxruntime - PyTorch|:", onnx_max_abs_diff(out, module, x))


if __name__ == "__main__":
    main()
