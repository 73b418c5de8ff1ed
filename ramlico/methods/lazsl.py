"""LaZSL as an evaluation-only LightningModule: crops <-> attribute descriptors by OT.

Per image: the global view is the backbone's own preprocessing of the decoded image, and
``num_crops`` square crops are cut from the **original** image with boxes seeded by ``(seed,
dataset index)`` (:class:`ramlico.zeroshot.crops.CropViews`, the loader's transform; ``crop_mode``
``pil`` = the reference's PIL crop + preprocess per crop, ``tensor`` = resized on the device). The
views are encoded with CLIP in chunks and matched to every class's descriptor embeddings by the
shared engine in one call (:func:`ramlico.zeroshot.lazsl_scores`). Scores therefore do not
depend on batch size, order, workers or the number of DDP processes. Spec: ``lazsl.md``.

``method`` switches to a baseline on the same global embeddings and class names (docs/zero_shot.md
section 10): ``clip`` (templates averaged, CLIP-E with several), ``dclip`` (mean cosine over the
LaZSL descriptor sentences), ``waffle`` (WaffleCLIP random descriptors) and ``cupl`` (CuPL
sentence file). Test steps return the batch's scores, targets and dataset indices, and LaZSL's
explanations and panels; :class:`ramlico.callbacks.ZeroShotWriter` writes ``predictions.csv``,
``zero_shot_metrics.json`` and the explanations from them.

Batches from the loader are :class:`ramlico.zeroshot.crops.LaZSLViews` (uint8 views + boxes,
plus the original in ``tensor`` mode) with the dataset indices in ``batch[2]``. Callers without
the original images may pass normalised ``(B, 3, H, W)`` tensors; crops then come from the tensor
(:meth:`LaZSL.crop_embeddings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import roi_align

from ramlico.backbones import CLIPBackbone
from ramlico.data.image_folder import decode_image
from ramlico.data.preprocess import ImagePreprocess
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.modules import TextFeatureCache
from ramlico.ot import SolverOptions
from ramlico.utils import get_logger
from ramlico.zeroshot import (
    LAZSL_SOLVER,
    clip_scores,
    dclip_scores,
    descriptor_texts,
    explain,
    lazsl_scores,
    load_descriptors,
    mean_text_classifier,
    sample_crops,
)
from ramlico.zeroshot.baselines import cupl_sentences, load_word_list, waffle_texts
from ramlico.zeroshot.crops import CROP_MODES, CropViews, LaZSLViews, resize_crops
from ramlico.zeroshot.panel import explanation_panel, to_uint8_image

__all__ = ["METHODS", "LaZSL", "resolve_descriptors_file"]

#: ``model.method`` values: LaZSL and its baselines (docs/zero_shot.md, "Baselines").
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
        theta: LaZSL's hybrid weight.
        solver: the Sinkhorn settings (:class:`ramlico.ot.SolverOptions`, ``model.solver``);
            default :data:`ramlico.zeroshot.LAZSL_SOLVER` (reference: ``reg`` 0.1, 100
            iterations, ``tol`` 1e-2 per problem); a mapping changes only the fields it names.
        prefix, suffix: descriptor sentence template (see ``descriptor_texts``).
        crop_mode: ``"pil"`` (default; the reference's PIL crop + preprocess of the original image,
            in the loader workers) or ``"tensor"`` (bicubic antialiased resized crops of the
            decoded original on the model's device; faster on a GPU, pixels differ slightly).
        crop_batch: views per CLIP forward.
        class_chunk: classes per engine call (memory), ``None`` = all.
        seed: crop seed.
        explain_images: explain the prediction of the first this-many test images: the
            descriptors that decided it (transport-weighted contribution ``w_j = sum_i T_ij S*_ij``,
            as in the paper's Fig. 4) and the crops that carried the most (boxes), returned
            from ``test_step`` (``ZeroShotWriter`` writes ``<output dir>/lazsl_explanations.json``).
            0 = off.
        explain_top: descriptors and crops listed per explanation.
        method: ``lazsl`` or a baseline ``clip``, ``dclip``, ``waffle``, ``cupl`` (:data:`METHODS`).
        templates: ``clip``'s prompt templates (one ``{}``); several = CLIP-E (averaged).
        cupl_file: ``cupl``'s ``{class: [sentence, ...]}`` JSON (CuPL release format).
        cupl_plus_templates: ``cupl`` also averages in ``templates`` (CuPL + CLIP-E).
        waffle_count: WaffleCLIP pairs (15 -> 30 random descriptors shared by all classes).
        waffle_seed: WaffleCLIP seed (the paper reports mean +- std over seeds 0..6).
        waffle_word_list: one word per line (WaffleCLIP's list); ``None`` = the words of the
            descriptor file.
        explain_png: also draw each explanation as ``lazsl_explanations/<index>.png``.
    """

    eval_only = True
    zero_shot_outputs = True

    def __init__(
        self,
        backbone: CLIPBackbone,
        descriptors_file: str,
        num_crops: int = 90,
        crop_scale: Sequence[float] = (0.6, 0.9),
        theta: float = 0.8,
        solver: SolverOptions | Mapping[str, Any] | None = None,
        prefix: str = "",
        suffix: str = "",
        crop_mode: str = "pil",
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
    ) -> None:
        super().__init__(ks=(1, 5))
        if method not in METHODS:
            raise ValueError(f"model.method must be one of {METHODS}, got {method!r}")
        if method == "cupl" and not cupl_file:
            raise ValueError("model.method=cupl needs model.cupl_file=/path/to/cupl_<dataset>.json")
        if method == "clip" and (not templates or any("{}" not in t for t in templates)):
            raise ValueError(f"model.templates need one '{{}}' each, got {list(templates)}")
        if crop_mode not in CROP_MODES:
            raise ValueError(f"model.crop_mode must be one of {CROP_MODES}, got {crop_mode!r}")
        # built objects stay out of the hyper-parameters; the run config keeps the settings
        self.save_hyperparameters(ignore=["backbone", "solver"], logger=False)
        self.backbone = backbone
        self.solver = SolverOptions.build(solver, LAZSL_SOLVER)
        self.descriptors = load_descriptors(resolve_descriptors_file(descriptors_file))
        self.words = load_word_list(waffle_word_list) if waffle_word_list else None
        self.text = TextFeatureCache(backbone)  # descriptor / baseline sentence embeddings
        self._pre: ImagePreprocess | None = None
        self._batch_index: Tensor | None = None
        #: explanations and panels of the current batch (``_explain_batch``)
        self.explanations: list[dict] = []
        self.panels: list[tuple[int, Any]] = []

    def eval_transform(self) -> Any:
        """The loader's per-image transform: the backbone's own preprocessing; for ``lazsl`` the
        global view plus the seeded crops of the original image (:class:`CropViews`)."""
        hp = self.hparams
        if hp.method != "lazsl":
            return self.backbone.preprocess()
        return CropViews(self.backbone.preprocess(), hp.num_crops, tuple(hp.crop_scale), hp.seed,
                         hp.crop_mode)  # fmt: skip

    def prediction_summary(self, split: str) -> dict[str, Any]:
        dm = self.datamodule
        dataset = dm.dataset_name if dm is not None else None
        return {"method": self.hparams.method, "dataset": dataset,
                "model": self.backbone.model_name}  # fmt: skip

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """The base step's outputs plus the batch's dataset ``index`` and, for explained images,
        ``explanations`` (records) and ``panels`` (``(index, PIL image)``)."""
        self._batch_index = batch[2] if len(batch) > 2 else None
        self.explanations, self.panels = [], []
        try:
            out = self._eval_step(batch, dataloader_idx, self.eval_splits)
        finally:
            self._batch_index = None
        if len(batch) > 2:
            out["index"] = batch[2]
        out["explanations"], out["panels"] = self.explanations, self.panels
        self.explanations, self.panels = [], []
        return out

    def _explain_inputs(
        self, images: Tensor | LaZSLViews, index: Tensor
    ) -> tuple[Tensor, Callable[[int], Image.Image]] | None:
        """``(B, N, 4)`` crop boxes and, per batch position, the picture they refer to: the
        dataset's original image (loader path) or the un-normalised input tensor; ``None`` when
        the originals are unknown (views without a datamodule dataset)."""
        hp = self.hparams
        if isinstance(images, LaZSLViews):
            dm = self.datamodule
            paths = None if dm is None else dm.image_paths(self.eval_splits[0])
            if paths is None:
                return None

            def original(b: int) -> Image.Image:
                return decode_image(paths[int(index[b])]).convert("RGB")

            return images.boxes.cpu(), original
        h, w = images.shape[-2:]
        boxes = torch.stack([sample_crops(w, h, hp.num_crops, scale=tuple(hp.crop_scale),
                                          seed=hp.seed, index=int(i)) for i in index])  # fmt: skip
        mean, std = self.backbone.image_mean, self.backbone.image_std

        def unnormalised(b: int) -> Image.Image:
            return to_uint8_image(images[b], mean, std)

        return boxes, unnormalised

    def _explain_batch(
        self, split: str, index: Tensor, boxes: Tensor, panel_images: Any, glob: Tensor,
        crops: Tensor, scores: Tensor,
    ) -> None:  # fmt: skip
        """Record the top descriptors and crops behind each prediction (docs/zero_shot.md).

        ``boxes (B, N, 4)`` are in the pixels of what ``panel_images(b)`` returns.
        """
        hp = self.hparams
        names = self.label_names[split]
        desc, mask = self.descriptor_embeddings(split)
        texts = self.descriptor_sentences(split)
        for b, idx in enumerate(index.tolist()):
            if idx >= hp.explain_images:
                continue
            k = int(scores[b].argmax())
            ex = explain(glob[b], crops[b], desc, mask, k, theta=hp.theta, solver=self.solver,
                         warn=False)  # fmt: skip
            top_d = ex.per_descriptor.argsort(descending=True)[: hp.explain_top].tolist()
            top_c = ex.per_crop.argsort(descending=True)[: hp.explain_top].tolist()
            if hp.explain_png:
                panel = explanation_panel(
                    panel_images(b), [boxes[b, i].tolist() for i in top_c[:3]],
                    [texts[k][j] for j in top_d], [float(ex.per_descriptor[j]) for j in top_d],
                    f"#{idx} predicted: {names[k]}  (psi {float(ex.score):.4f})",
                )  # fmt: skip
                self.panels.append((idx, panel))
            self.explanations.append({
                "image_index": idx,
                "panel": f"lazsl_explanations/{idx:05d}.png" if hp.explain_png else None,
                "predicted": names[k],
                "score": float(ex.score),
                "descriptors": [
                    {"text": texts[k][j], "contribution": float(ex.per_descriptor[j])}
                    for j in top_d
                ],
                "crops": [
                    {"box_xyxy": boxes[b, i].tolist(), "contribution": float(ex.per_crop[i])}
                    for i in top_c
                ],
            })  # fmt: skip

    def descriptor_sentences(self, split: str) -> list[list[str]]:
        """Per class of ``split``, its descriptor sentences (docs/zero_shot.md)."""
        hp = self.hparams
        source = f"descriptors_file {hp.descriptors_file}"
        return descriptor_texts(
            self.descriptors, self.label_names[split], prefix=hp.prefix, suffix=hp.suffix,
            source=source,
        )  # fmt: skip

    def descriptor_embeddings(self, split: str) -> tuple[Tensor, Tensor]:
        """``(K, M_max, D)`` unit descriptor embeddings and ``(K, M_max)`` mask of ``split``."""
        sentences = functools.partial(self.descriptor_sentences, split)  # read on first use
        return self.text.sentence_sets("descriptors", self.label_names[split], sentences,
                                       self.device)  # fmt: skip

    def _encode_views(self, pixels: Tensor) -> Tensor:
        """uint8 ``(..., 3, S, S)`` views -> unit embeddings ``(..., D)``, in ``crop_batch``
        chunks, normalised in the backbone's dtype."""
        pre, dtype = self._preprocess(), self.backbone.model.logit_scale.dtype
        flat = pixels.reshape(-1, *pixels.shape[-3:])
        feats = [self.backbone.embed_image(pre.normalize(chunk.to(self.device), dtype))
                 for chunk in flat.split(self.hparams.crop_batch)]  # fmt: skip
        return F.normalize(torch.cat(feats), dim=-1).reshape(*pixels.shape[:-3], -1)

    def view_embeddings(self, views: LaZSLViews) -> tuple[Tensor, Tensor | None]:
        """Global ``(B, D)`` and crop ``(B, N, D)`` unit embeddings of a :class:`LaZSLViews` batch
        (crops ``None`` for the baselines)."""
        if self.hparams.method != "lazsl":
            return self._encode_views(views.views[:, 0]), None
        if self.hparams.crop_mode == "pil":
            feats = self._encode_views(views.views)
            return feats[:, 0], feats[:, 1:]
        size = views.views.shape[-1]
        pairs = zip(views.original, views.boxes, strict=True)
        crops = torch.stack([resize_crops(o.to(self.device), bx, size) for o, bx in pairs])
        return self._encode_views(views.views[:, 0]), self._encode_views(crops)

    def crop_embeddings(self, images: Tensor, index: Tensor | None = None) -> Tensor:
        """Fallback for already preprocessed ``(B, 3, H, W)`` images (callers without the
        originals): ``(B, N, D)`` unit embeddings of seeded crops cut from the tensor itself
        (``roi_align``, bilinear) and resized to ``H x W``; seeds from ``index`` (default
        ``0..B-1``). The loader path (:meth:`eval_transform`) crops the original instead."""
        hp = self.hparams
        b, _, h, w = images.shape
        index = torch.arange(b) if index is None else index
        boxes = [
            sample_crops(w, h, hp.num_crops, scale=tuple(hp.crop_scale), seed=hp.seed,
                         index=int(i)).to(images)
            for i in index.tolist()
        ]  # fmt: skip
        crops = roi_align(images, boxes, output_size=(h, w), aligned=True)
        feats = [self.backbone.embed_image(chunk) for chunk in crops.split(hp.crop_batch)]
        return F.normalize(torch.cat(feats), dim=-1).reshape(b, hp.num_crops, -1)

    def _preprocess(self) -> ImagePreprocess:
        if self._pre is None:
            self._pre = self.backbone.preprocess()
        return self._pre

    def baseline_sentences(self, split: str) -> list[list[str]]:
        """Per class of ``split``, the sentences of the baseline ``method`` (docs/zero_shot.md)."""
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
        sentences = functools.partial(self.baseline_sentences, split)  # read on first use
        return self.text.sentence_sets(self.hparams.method, self.label_names[split], sentences,
                                       self.device)  # fmt: skip

    def label_scores(
        self, images: Tensor, label_names: Sequence[str], evidence: bool = True
    ) -> LabelScores:
        """Scores and, with ``evidence``, each image's descriptor / crop panel of its top class
        (images with index below ``explain_images``; ``None`` for the others). The index is the
        batch's dataset index under ``trainer.predict``, else the position in the batch."""
        before, index = len(self.panels), self._batch_index
        scores = self.scores(images, label_names)
        panels = None
        if evidence:
            made = dict(self.panels[before:])
            where = index.tolist() if index is not None else range(scores.shape[0])
            panels = [made.get(int(i)) for i in where]
        return LabelScores(scores=scores, logits=scores, panels=panels)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        self._batch_index = batch[1]  # dataset indices: crop seeds and explained images
        self.explanations, self.panels = [], []  # label_scores reads this batch's panels
        try:
            return super().predict_step(batch, batch_idx, dataloader_idx)
        finally:
            self._batch_index = None

    def predict_scores(self, images: Tensor | LaZSLViews, split: str) -> Tensor:
        """``(B, K)`` scores over ``label_names[split]``.

        ``images``: a :class:`LaZSLViews` batch from the loader (views of the original images;
        what :meth:`eval_transform` produces) or, for callers without the originals, normalised
        ``(B, 3, H, W)`` images (crops then come from that tensor, :meth:`crop_embeddings`).
        """
        hp = self.hparams
        index = self._batch_index
        if isinstance(images, LaZSLViews):
            global_feat, crop_feat = self.view_embeddings(images)
        else:
            global_feat = F.normalize(self.backbone.embed_image(images), dim=-1)
            crop_feat = self.crop_embeddings(images, index) if hp.method == "lazsl" else None
        n_images = global_feat.shape[0]
        index = torch.arange(n_images) if index is None else index.cpu()
        if hp.method == "lazsl":
            assert crop_feat is not None  # lazsl encodes crops (view_embeddings, crop_embeddings)
            desc, mask = self.descriptor_embeddings(split)
            scores = lazsl_scores(
                global_feat, crop_feat, desc.to(global_feat.dtype), mask, theta=hp.theta,
                solver=self.solver, class_chunk=hp.class_chunk, warn=False,
            )  # fmt: skip
            wanted = hp.explain_images and int(index.min()) < hp.explain_images
            inputs = self._explain_inputs(images, index) if wanted else None
            if inputs is not None:
                self._explain_batch(split, index, *inputs, global_feat, crop_feat, scores)
        else:
            feats, mask = self.baseline_embeddings(split)
            feats = feats.to(global_feat.dtype)
            if hp.method in ("clip", "cupl"):
                scores = clip_scores(global_feat, mean_text_classifier(feats, mask))
            else:  # dclip, waffle: mean cosine over the class's sentences
                scores = dclip_scores(global_feat, feats, mask)
        return scores
