"""LaZSL as an evaluation-only LightningModule: crops <-> attribute descriptors by OT.

Per image: ``num_crops`` seeded square crops (:func:`ramlico.zeroshot.sample_crops`) are cut
from the preprocessed image and resized to the input size in one ``roi_align`` batch, encoded with
CLIP in chunks, and matched to every class's descriptor embeddings by the shared engine in one
call (:func:`ramlico.zeroshot.lazsl_scores`). Spec: ``lazsl.md``.

``method`` switches to a baseline on the same global embeddings and class names (spec/lazsl.md
section 10): ``clip`` (templates averaged, CLIP-E with several), ``dclip`` (mean cosine over the
LaZSL descriptor sentences), ``waffle`` (WaffleCLIP random descriptors) and ``cupl`` (CuPL
sentence file). Every run writes ``predictions.csv`` and ``zero_shot_metrics.json``
(:class:`ramlico.zeroshot.predictions.PredictionLog`); LaZSL also writes explanation panels.

Deviation (documented): crops are cut from the already resized/normalised image rather than the
original file; boxes are seeded by the image's position in the evaluation order (``index``), so a
fixed data order gives identical crops across runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from ramlico.backbones import CLIPBackbone
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.utils import get_logger
from ramlico.zeroshot import (
    clip_scores,
    dclip_scores,
    descriptor_texts,
    explain,
    lazsl_scores,
    load_descriptors,
    mean_text_classifier,
    pad_descriptor_embeddings,
    sample_crops,
)
from ramlico.zeroshot.baselines import cupl_sentences, load_word_list, waffle_texts
from ramlico.zeroshot.panel import explanation_panel, to_uint8_image
from ramlico.zeroshot.predictions import PredictionLog

__all__ = ["METHODS", "LaZSL", "resolve_descriptors_file"]

#: ``model.method`` values: LaZSL and its baselines (spec/lazsl.md section 10).
METHODS = ("lazsl", "clip", "dclip", "waffle", "cupl")

log = get_logger(__name__)

Tensor = torch.Tensor


BUNDLED_DESCRIPTORS = Path(__file__).resolve().parents[1] / "zeroshot" / "descriptor_files"


def resolve_descriptors_file(name_or_path: str) -> Path:
    """A descriptor JSON path, or the name of a bundled file (``zeroshot/descriptor_files``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = BUNDLED_DESCRIPTORS / f"{name_or_path}.json"
    if bundled.is_file():
        return bundled
    available = sorted(p.stem for p in BUNDLED_DESCRIPTORS.glob("*.json"))
    raise FileNotFoundError(
        f"descriptors_file not found: {name_or_path}; pass a {{class: [descriptor, ...]}} JSON "
        f"path or a bundled name {available}"
    )


class LaZSL(RamlicoModule):
    """Training-free zero-shot classification by crop-to-attribute optimal transport.

    Args:
        backbone: frozen :class:`CLIPBackbone`.
        descriptors_file: ``{class: [descriptor, ...]}`` JSON (DCLIP/CuPL format), or the name of
            a bundled file (``generated_shapes``).
        num_crops: crops per image (90).
        crop_scale: crop side range as a fraction of the short side.
        theta, reg, max_iter, tol: LaZSL's hybrid weight and Sinkhorn settings.
        prefix, suffix: descriptor sentence template (see ``descriptor_texts``).
        crop_batch: crops per CLIP forward.
        class_chunk: classes per engine call (memory), ``None`` = all.
        seed: crop seed.
        explain_images: explain the prediction of the first this-many test images: the
            descriptors that decided it (transport-weighted contribution ``w_j = sum_i T_ij S*_ij``,
            as in the paper's Fig. 4) and the crops that carried the most (boxes), written to
            ``<output dir>/lazsl_explanations.json``. 0 = off.
        explain_top: descriptors and crops listed per explanation.
        method: ``lazsl`` or a baseline ``clip``, ``dclip``, ``waffle``, ``cupl`` (:data:`METHODS`).
        templates: ``clip``'s prompt templates (one ``{}``); several = CLIP-E (averaged).
        cupl_file: ``cupl``'s ``{class: [sentence, ...]}`` JSON (CuPL release format).
        cupl_plus_templates: ``cupl`` also averages in ``templates`` (CuPL + CLIP-E, spec 10.4).
        waffle_count: WaffleCLIP pairs (15 -> 30 random descriptors shared by all classes).
        waffle_seed: WaffleCLIP seed (the paper reports mean +- std over seeds 0..6).
        waffle_word_list: one word per line (WaffleCLIP's list); ``None`` = the words of the
            descriptor file.
        explain_png: also draw each explanation as ``lazsl_explanations/<index>.png``.
        write_predictions: write ``predictions.csv`` and ``zero_shot_metrics.json``.
    """

    eval_only = True

    def __init__(
        self,
        backbone: CLIPBackbone,
        descriptors_file: str,
        num_crops: int = 90,
        crop_scale: Sequence[float] = (0.6, 0.9),
        theta: float = 0.8,
        reg: float = 0.1,
        max_iter: int = 100,
        tol: float | None = 1e-2,
        prefix: str = "",
        suffix: str = "",
        crop_batch: int = 256,
        class_chunk: int | None = None,
        seed: int = 1,
        explain_images: int = 16,
        explain_top: int = 5,
        method: str = "lazsl",
        templates: Sequence[str] = ("a photo of a {}.",),
        cupl_file: str | None = None,
        cupl_plus_templates: bool = False,
        waffle_count: int = 15,
        waffle_seed: int = 0,
        waffle_word_list: str | None = None,
        explain_png: bool = True,
        write_predictions: bool = True,
    ) -> None:
        super().__init__(ks=(1, 5))
        if method not in METHODS:
            raise ValueError(f"model.method must be one of {METHODS}, got {method!r}")
        if method == "cupl" and not cupl_file:
            raise ValueError("model.method=cupl needs model.cupl_file=/path/to/cupl_<dataset>.json")
        if method == "clip" and (not templates or any("{}" not in t for t in templates)):
            raise ValueError(f"model.templates need one '{{}}' each, got {list(templates)}")
        self.save_hyperparameters(ignore=["backbone"], logger=False)
        self.backbone = backbone
        self.descriptors = load_descriptors(resolve_descriptors_file(descriptors_file))
        self.words = load_word_list(waffle_word_list) if waffle_word_list else None
        self._desc_cache: dict[str, tuple[Tensor, Tensor]] = {}
        self._text_cache: dict[str, tuple[Tensor, Tensor]] = {}
        self._seen = 0
        self._batch_labels: Tensor | None = None
        self.explanations: list[dict] = []
        self.panels: list[tuple[int, Any]] = []
        self.predictions = PredictionLog(k=5)

    def on_test_epoch_start(self) -> None:
        self._seen = 0
        self.explanations = []
        self.panels = []
        self.predictions = PredictionLog(k=5)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        self._batch_labels = batch[1]
        return super().test_step(batch, batch_idx, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self._trainer is None or not self.trainer.is_global_zero:
            return
        root = Path(self.trainer.default_root_dir)
        if self.explanations:
            out = root / "lazsl_explanations.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(self.explanations, indent=1))
            log.info("wrote %d LaZSL explanations to %s", len(self.explanations), out)
        for index, panel in self.panels:
            (root / "lazsl_explanations").mkdir(parents=True, exist_ok=True)
            panel.save(root / "lazsl_explanations" / f"{index:05d}.png")
        if self.hparams.write_predictions and len(self.predictions):
            dm = self.trainer.datamodule
            samples = getattr(getattr(dm, "dataset", None), "samples", None)
            hp = getattr(dm, "hparams", {})
            info = {"method": self.hparams.method,
                    "dataset": hp.get("dataset") or hp.get("source") or type(dm).__name__,
                    "model": self.backbone.model_name}  # fmt: skip
            out = self.predictions.write(
                root, self.label_names[self.eval_splits[0]], info=info,
                paths=[p for p, _ in samples] if samples is not None else None,
            )  # fmt: skip
            log.info("wrote %d predictions to %s", len(self.predictions), out)

    def _explain_batch(
        self, split: str, images: Tensor, glob: Tensor, crops: Tensor, scores: Tensor
    ) -> None:
        """Record the top descriptors and crops behind each prediction (spec lazsl.md 7)."""
        hp = self.hparams
        names = self.label_names[split]
        desc, mask = self.descriptor_embeddings(split)
        texts = self.descriptor_sentences(split)
        _, _, h, w = images.shape
        for b in range(images.shape[0]):
            index = self._seen + b
            if index >= hp.explain_images:
                return
            k = int(scores[b].argmax())
            ex = explain(
                glob[b], crops[b], desc, mask, k, theta=hp.theta, reg=hp.reg,
                max_iter=hp.max_iter, tol=hp.tol, warn=False,
            )  # fmt: skip
            boxes = sample_crops(w, h, hp.num_crops, scale=tuple(hp.crop_scale), seed=hp.seed,
                                 index=index)  # fmt: skip
            top_d = ex.per_descriptor.argsort(descending=True)[: hp.explain_top].tolist()
            top_c = ex.per_crop.argsort(descending=True)[: hp.explain_top].tolist()
            if hp.explain_png:
                image = to_uint8_image(images[b], self.backbone.image_mean, self.backbone.image_std)
                panel = explanation_panel(
                    image, [boxes[i].tolist() for i in top_c[:3]],
                    [texts[k][j] for j in top_d], [float(ex.per_descriptor[j]) for j in top_d],
                    f"#{index} predicted: {names[k]}  (psi {float(ex.score):.4f})",
                )  # fmt: skip
                self.panels.append((index, panel))
            self.explanations.append({
                "image_index": index,
                "panel": f"lazsl_explanations/{index:05d}.png" if hp.explain_png else None,
                "predicted": names[k],
                "score": float(ex.score),
                "descriptors": [
                    {"text": texts[k][j], "contribution": float(ex.per_descriptor[j])}
                    for j in top_d
                ],
                "crops": [
                    {"box_xyxy": boxes[i].tolist(), "contribution": float(ex.per_crop[i])}
                    for i in top_c
                ],
            })  # fmt: skip

    def descriptor_sentences(self, split: str) -> list[list[str]]:
        """Per class of ``split``, its descriptor sentences (spec lazsl.md section 2)."""
        hp = self.hparams
        names = self.label_names[split]
        # The file may describe more classes than this split ranks: use the split's ones.
        subset = {n: d for n, d in self.descriptors.items() if n in set(names)}
        return descriptor_texts(subset, names, prefix=hp.prefix, suffix=hp.suffix)

    def descriptor_embeddings(self, split: str) -> tuple[Tensor, Tensor]:
        """``(K, M_max, D)`` unit descriptor embeddings and ``(K, M_max)`` mask of ``split``."""
        if split not in self._desc_cache:
            texts = self.descriptor_sentences(split)
            with torch.no_grad():
                embs = [self.backbone.encode_text(self.backbone.tokenize(t), normalize=True)
                        for t in texts]  # fmt: skip
            feats, mask = pad_descriptor_embeddings(embs)
            self._desc_cache[split] = (feats.to(self.device), mask.to(self.device))
        return self._desc_cache[split]

    def crop_embeddings(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, N, D)`` unit embeddings of the seeded crops."""
        hp = self.hparams
        b, _, h, w = images.shape
        boxes = [
            sample_crops(w, h, hp.num_crops, scale=tuple(hp.crop_scale), seed=hp.seed,
                         index=self._seen + i).to(images)
            for i in range(b)
        ]  # fmt: skip
        crops = roi_align(images, boxes, output_size=(h, w), aligned=True)
        feats = [self.backbone.embed_image(chunk) for chunk in crops.split(hp.crop_batch)]
        return F.normalize(torch.cat(feats), dim=-1).reshape(b, hp.num_crops, -1)

    def baseline_sentences(self, split: str) -> list[list[str]]:
        """Per class of ``split``, the sentences of the baseline ``method`` (spec 10)."""
        hp = self.hparams
        names = self.label_names[split]
        if hp.method == "clip":
            return [[t.format(n.replace("_", " ")) for t in hp.templates] for n in names]
        if hp.method == "cupl":
            extra = list(hp.templates) if hp.cupl_plus_templates else []
            sentences = cupl_sentences(hp.cupl_file, names)
            return [s + [t.format(n.replace("_", " ")) for t in extra]
                    for s, n in zip(sentences, names, strict=True)]  # fmt: skip
        if hp.method == "waffle":
            return waffle_texts(names, self.descriptors, count=hp.waffle_count,
                                seed=hp.waffle_seed, words=self.words)  # fmt: skip
        return self.descriptor_sentences(split)

    def baseline_embeddings(self, split: str) -> tuple[Tensor, Tensor]:
        """``(K, M_max, D)`` unit embeddings of :meth:`baseline_sentences` and their mask."""
        if split not in self._text_cache:
            with torch.no_grad():
                embs = [self.backbone.encode_text(self.backbone.tokenize(t), normalize=True)
                        for t in self.baseline_sentences(split)]  # fmt: skip
            feats, mask = pad_descriptor_embeddings(embs)
            self._text_cache[split] = (feats.to(self.device), mask.to(self.device))
        return self._text_cache[split]

    def label_scores(
        self, images: Tensor, label_names: Sequence[str], evidence: bool = True
    ) -> LabelScores:
        """Scores and, with ``evidence``, each image's descriptor / crop panel of its top class
        (for the first ``explain_images`` images scored; ``None`` for the others)."""
        start, before = self._seen, len(self.panels)
        scores = self.scores(images, label_names)
        panels = None
        if evidence:
            made = dict(self.panels[before:])
            panels = [made.get(start + b) for b in range(images.shape[0])]
        return LabelScores(scores=scores, logits=scores, panels=panels)

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        hp = self.hparams
        global_feat = F.normalize(self.backbone.embed_image(images), dim=-1)
        if hp.method == "lazsl":
            crop_feat = self.crop_embeddings(images)
            desc, mask = self.descriptor_embeddings(split)
            scores = lazsl_scores(
                global_feat, crop_feat, desc.to(global_feat.dtype), mask, theta=hp.theta,
                reg=hp.reg, max_iter=hp.max_iter, tol=hp.tol, class_chunk=hp.class_chunk,
                warn=False,
            )  # fmt: skip
            if self._seen < hp.explain_images:
                self._explain_batch(split, images, global_feat, crop_feat, scores)
        else:
            feats, mask = self.baseline_embeddings(split)
            feats = feats.to(global_feat.dtype)
            if hp.method in ("clip", "cupl"):
                scores = clip_scores(global_feat, mean_text_classifier(feats, mask))
            else:  # dclip, waffle: mean cosine over the class's sentences
                scores = dclip_scores(global_feat, feats, mask)
        if self._batch_labels is not None:
            start = self._seen
            index = torch.arange(start, start + images.shape[0])
            self.predictions.add(index, scores, self._batch_labels)
            self._batch_labels = None
        self._seen += images.shape[0]
        return scores
