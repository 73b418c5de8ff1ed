"""``ramlico-demo``: a local web page to tag an image and see where each label matched.

::

    pip install "ramlico[demo]"
    ramlico-demo                                   # zero-shot CLIP demo model, http://127.0.0.1:7860
    ramlico-demo logs/train/runs/<date>/checkpoints/last.ckpt --labels "cat,dog,car"

Drop an image, type labels (comma-separated), press "Tag": the page shows the tags (calibrated
probability >= threshold), every label's probability, and one heatmap overlay per label
(methods with region evidence). It serves on localhost only unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from ramlico.predict.images import load_image
from ramlico.predict.predictor import Predictor, load_predictor

__all__ = ["build_app", "main", "parse_labels", "tag_image"]

DEFAULT_SOURCE = "clip_zeroshot_demo"
DISPLAY_SIDE = 256


def parse_labels(text: str) -> list[str]:
    """``"cat, dog,,car"`` -> ``["cat", "dog", "car"]`` (commas or new lines separate)."""
    parts = text.replace("\n", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


def tag_image(
    predictor: Predictor, image: Any, labels_text: str, threshold: float | None = None
) -> tuple[str, dict[str, float], list[tuple[Any, str]]]:
    """One demo request: ``(tags text, {label: probability}, [(overlay, caption), ...])``."""
    if image is None:
        raise ValueError("upload an image first")
    labels = parse_labels(labels_text)
    if not labels:
        raise ValueError("type at least one label (comma-separated)")
    pred = predictor(image, labels=labels, threshold=threshold)[0]
    probs = {n: float(p) for n, p in zip(pred.labels, pred.probabilities, strict=True)}
    tags = ", ".join(f"{t} ({probs[t]:.2f})" for t in pred.tags) or "(no tag above threshold)"
    overlays = []
    if pred.heatmaps is not None:
        base = load_image(image)
        if min(base.size) < DISPLAY_SIDE:  # small inputs: enlarge for the page
            factor = DISPLAY_SIDE / min(base.size)
            base = base.resize((round(base.width * factor), round(base.height * factor)))
        for name in sorted(labels, key=lambda n: -probs[n]):
            overlays.append((pred.overlay(name, base), f"{name}: {probs[name]:.2f}"))
    return tags, probs, overlays


def build_app(predictor: Predictor, default_labels: Sequence[str] = ()) -> Any:
    """The Gradio Blocks app around ``predictor``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def run(image: Any, labels_text: str, threshold: float | str | None) -> tuple:
        try:
            thr = None if threshold in (None, "") or float(threshold) <= 0 else float(threshold)
            return tag_image(predictor, image, labels_text, thr)
        except ValueError as err:
            raise gr.Error(str(err)) from err

    with gr.Blocks(title="ramlico: tag your image") as app:
        gr.Markdown("## ramlico - tag an image and see where each label matched")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="image", elem_id="image")
                labels = gr.Textbox(value=", ".join(default_labels), elem_id="labels", lines=2,
                                    label="labels (comma-separated)")  # fmt: skip
                threshold = gr.Number(value=0, label="threshold (0 = calibrated)",
                                      elem_id="threshold")  # fmt: skip
                submit = gr.Button("Tag", variant="primary", elem_id="submit")
            with gr.Column():
                tags = gr.Textbox(label="tags", elem_id="tags", interactive=False)
                probs = gr.Label(label="probabilities", elem_id="probabilities")
                heatmaps = gr.Gallery(label="heatmaps", elem_id="heatmaps", columns=3)
        submit.click(run, [image, labels, threshold], [tags, probs, heatmaps])
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of ``ramlico-demo``."""
    parser = argparse.ArgumentParser(prog="ramlico-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE,
                        help="checkpoint file or training-free experiment name "
                             f"(default {DEFAULT_SOURCE})")  # fmt: skip
    parser.add_argument("--labels", default=None, help="default labels, comma-separated")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (localhost)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default=None)
    parser.add_argument("--override", action="append", default=[],
                        help="Hydra override for an experiment (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    predictor = load_predictor(args.source, overrides=args.override, device=args.device)
    labels = parse_labels(args.labels) if args.labels else (predictor.labels or [])
    app = build_app(predictor, labels)
    app.launch(server_name=args.host, server_port=args.port, share=False)
