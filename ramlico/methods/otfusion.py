"""OTFusion as an evaluation-only LightningModule (transductive: labels the whole test split).

Test steps only extract features (CLIP image embeddings, DINOv2 embeddings, labels); at the end
of the epoch :func:`ramlico.zeroshot.otfusion_predict` labels the whole split with the shared OT
engine, and both OTFusion and the CLIP zero-shot prior are scored (``test/<split>/top1`` and
``test/<split>/clip_top1``). Spec: ``otfusion.md``.

With ``cache_dir`` the features of every ``cache_chunk_batches`` consecutive batches are saved as
one chunk of a :class:`ramlico.zeroshot.feature_cache.FeatureCache` keyed by the encoders'
weights fingerprint and the data config: a killed run resumes from the last finished chunk, and
a re-run (e.g. another ``rounds``/``eps``) skips the encoders entirely (the loader still reads
the images). The fused scores of each split are left in ``epoch_outputs``, from which
:class:`ramlico.callbacks.ZeroShotWriter` writes ``<run dir>/predictions.csv``.

Images are preprocessed by the CLIP backbone's own transform (:meth:`OTFusion.eval_transform`).
Under DDP each rank extracts its share of the split (every image once), the features are gathered
and put in dataset-index order, and the fusion runs on the whole split exactly as in one process.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.methods.base import RamlicoModule
from ramlico.metrics.functional import topk_accuracy
from ramlico.modules import TextFeatureCache
from ramlico.ot import SolverOptions
from ramlico.utils import get_logger
from ramlico.utils.distributed import all_gather_rows
from ramlico.zeroshot import OTFUSION_SOLVER, otfusion_predict
from ramlico.zeroshot.feature_cache import FeatureCache

__all__ = ["OTFusion", "weights_fingerprint"]

log = get_logger(__name__)
Tensor = torch.Tensor


def weights_fingerprint(module: nn.Module) -> str:
    """A cheap identity of a frozen model's weights: parameter count and rounded sums.

    Different architectures, random seeds or checkpoints give different strings (used as part of
    the feature-cache key).
    """
    count, total, squares = 0, 0.0, 0.0
    with torch.no_grad():
        for p in module.parameters():
            count += p.numel()
            total += float(p.double().sum())
            squares += float(p.double().square().sum())
    return f"{type(module).__name__}:{count}:{total:.6e}:{squares:.6e}"


#: ``otfusion_predict`` keywords the module fills itself.
_OWN_KEYWORDS = ("clip_image", "clip_text", "dino", "labels", "solver")


def _check_fusion_options(options: Mapping[str, Any]) -> None:
    """Name a misspelt or misplaced fusion option (e.g. the old ``eps``) before the test."""
    params = inspect.signature(otfusion_predict).parameters
    allowed = sorted(set(params) - set(_OWN_KEYWORDS))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = ""
        if {"eps", "sinkhorn_iters", "sinkhorn_tol"} & set(unknown):
            hint = " (the Sinkhorn settings are model.solver: reg, max_iter, tol, ...)"
        raise TypeError(f"OTFusion: unknown option(s) {unknown}; allowed: {allowed}{hint}")


class OTFusion(RamlicoModule):
    """CLIP x DINOv2 transductive zero-shot classification by optimal transport.

    Args:
        clip: frozen :class:`CLIPBackbone`.
        dino: frozen :class:`TimmBackbone` (DINOv2 ViT); ``None`` = CLIP image features only.
        templates: prompt templates for the class texts.
        solver: the Sinkhorn settings of the OT step (:class:`ramlico.ot.SolverOptions`,
            ``model.solver``); default :data:`ramlico.zeroshot.OTFUSION_SOLVER` (``reg`` = eps
            0.01, 4 iterations); a mapping changes only the fields it names.
        cache_dir: folder of the resumable feature cache; ``None`` = keep features in memory.
        cache_chunk_batches: batches per cache chunk.
        dino_norm: ``"imagenet"`` re-normalises the (CLIP-normalised) input with the DINOv2
            model's own mean/std before the DINOv2 forward (docs/zero_shot.md, "OTFusion");
            ``"clip"`` feeds the same tensor as CLIP (the authors' driver, parity).
        **fusion_kwargs: keyword arguments of :func:`ramlico.zeroshot.otfusion_predict`
            (``rounds``, ``text_weight``, ``class_prior``, ``gmm_temperature``, ...).
    """

    eval_only = True
    zero_shot_outputs = True

    def __init__(
        self,
        clip: CLIPBackbone,
        dino: TimmBackbone | None = None,
        templates: Sequence[str] = ("a photo of a {}.",),
        solver: SolverOptions | Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        cache_chunk_batches: int = 16,
        dino_norm: str = "imagenet",
        **fusion_kwargs: Any,
    ) -> None:
        super().__init__(ks=(1, 5))
        if dino_norm not in ("imagenet", "clip"):
            raise ValueError(f"dino_norm must be 'imagenet' or 'clip', got {dino_norm!r}")
        if cache_chunk_batches < 1:
            raise ValueError(f"cache_chunk_batches must be >= 1, got {cache_chunk_batches}")
        self.save_hyperparameters(ignore=["clip", "dino", "solver"], logger=False)
        self.solver = SolverOptions.build(solver, OTFUSION_SOLVER)
        self.clip = clip
        self.dino = dino
        self.templates = TextFeatureCache.check_templates(templates)
        self.text = TextFeatureCache(clip)
        _check_fusion_options(fusion_kwargs)
        self.fusion_kwargs = dict(fusion_kwargs)
        if dino is None:
            self.fusion_kwargs.setdefault("sources", ("clip_image",))
        self._features: dict[str, list[list[Tensor]]] = {}
        self._caches: dict[str, FeatureCache] = {}
        self._pending: dict[str, dict[int, list[list[Tensor]]]] = {}
        self._clip_top1: dict[str, float] = {}

    def eval_transform(self) -> Any:
        """The CLIP backbone's own preprocessing (DINOv2 gets the same pixels, see
        :meth:`dino_input`)."""
        return self.clip.preprocess()

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        """Inductive CLIP zero-shot scores (the prior); OTFusion itself needs the whole split."""
        image = F.normalize(self.clip.embed_image(images), dim=-1)
        weights = self.text.classifier(self.label_names[split], self.templates, self.device)
        return image @ weights.to(image.dtype)

    # ----------------------------------------------------------------- feature cache
    def cache_key(self, split: str, batch_size: int | None) -> dict[str, Any]:
        """What the cached features of ``split`` depend on (encoders, data, chunking)."""
        dm = self.datamodule
        paths = None if dm is None else dm.image_paths(split)
        if paths is None:
            raise ValueError(
                "cache_dir needs data read from image files (the datamodule's image_paths); set "
                "model.cache_dir=null otherwise"
            )
        files = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()
        return {
            "clip": [self.clip.model_name, weights_fingerprint(self.clip)],
            "dino": weights_fingerprint(self.dino) if self.dino is not None else None,
            "dino_norm": self.hparams.dino_norm,
            "templates": list(self.hparams.templates),
            "classes": self.label_names[split],
            "split": split,
            "files": files,
            "images": len(paths),
            "transform": self.clip.preprocess().describe(),
            "batch_size": batch_size,
            "chunk_batches": self.hparams.cache_chunk_batches,
        }

    def on_test_epoch_start(self) -> None:
        self._features, self._caches, self._pending = {}, {}, {}
        self.epoch_outputs, self._clip_top1 = {}, {}
        if self.hparams.cache_dir is None:
            return
        if self.trainer.world_size > 1:
            raise ValueError("the OTFusion feature cache runs on one device; set devices=1")
        loaders = self.trainer.test_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        for idx, split in enumerate(self.eval_splits):
            batches = self.trainer.num_test_batches[idx]
            chunks = -(-int(batches) // self.hparams.cache_chunk_batches)
            key = self.cache_key(split, getattr(loaders[idx], "batch_size", None))
            cache = FeatureCache(self.hparams.cache_dir, key, chunks)
            done = len(cache.done_chunks())
            log.info("feature cache %s: %d/%d chunks done", cache.folder, done, chunks)
            self._caches[split] = cache

    def dino_input(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` CLIP-normalised images -> the DINOv2 input (``dino_norm``)."""
        if self.hparams.dino_norm == "clip" or self.dino is None:
            return images
        # The input was normalised by the CLIP preprocessing (eval_transform), or by the
        # datamodule's own statistics when it does not take a model transform.
        dm = self.datamodule
        src_mean: Sequence[float]
        src_std: Sequence[float]
        if dm is None or dm.uses_model_transform:
            src_mean, src_std = self.clip.image_mean, self.clip.image_std
        else:
            src_mean, src_std = dm.normalization
        cfg = getattr(self.dino.model, "pretrained_cfg", None) or {}
        dst_mean = cfg.get("mean", (0.485, 0.456, 0.406))
        dst_std = cfg.get("std", (0.229, 0.224, 0.225))

        def col(values: Sequence[float]) -> Tensor:
            return images.new_tensor(list(values)).view(1, -1, 1, 1)

        return (images * col(src_std) + col(src_mean) - col(dst_mean)) / col(dst_std)

    def _extract(self, images: Tensor, labels: Tensor, index: Tensor) -> list[Tensor]:
        clip_feat = self.clip.embed_image(images).float()
        dino_feat = (
            clip_feat[:, :0] if self.dino is None else self.dino(self.dino_input(images)).float()
        )
        return [clip_feat, dino_feat, labels, index.to(labels.device)]

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch[0], batch[1]
        index = batch[2] if len(batch) > 2 else torch.full_like(labels, -1)
        split = self.eval_splits[dataloader_idx]
        cache = self._caches.get(split)
        if cache is None:
            store = self._features.setdefault(split, [[], [], [], []])
            for bucket, value in zip(store, self._extract(images, labels, index), strict=True):
                bucket.append(value)
            return
        per_chunk = self.hparams.cache_chunk_batches
        chunk = batch_idx // per_chunk
        if cache.has_chunk(chunk):
            return
        store = self._pending.setdefault(split, {}).setdefault(chunk, [[], [], [], []])
        for bucket, value in zip(store, self._extract(images, labels, index), strict=True):
            bucket.append(value)
        last = self.trainer.num_test_batches[dataloader_idx] - 1
        if batch_idx % per_chunk == per_chunk - 1 or batch_idx == last:
            clip_f, dino_f, y, _ = (torch.cat(b) for b in self._pending[split].pop(chunk))
            cache.save_chunk(chunk, {"clip": clip_f, "dino": dino_f, "labels": y})

    def _split_features(self, split: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(clip (N, D), dino (N, D'), labels (N,), text (K, D))`` of a finished split."""
        names = self.label_names[split]
        cache = self._caches.get(split)
        if cache is None:
            # Ranks hold different numbers of images (unrepeated sampler): gather the rows and
            # restore the dataset order, so the transductive fusion sees the 1-process input.
            clip_all, dino_all, y, index = (
                all_gather_rows(torch.cat(parts), self.device) for parts in self._features[split]
            )
            order = index.argsort() if bool((index >= 0).all()) else torch.arange(len(index))
            order = order.to(clip_all.device)
            text = self.text.classifier(names, self.templates, self.device).T
            return clip_all[order], dino_all[order], y[order], text
        feats = cache.load_all()
        if cache.has("text"):
            text = cache.load("text")["text"]
        else:
            text = self.text.classifier(names, self.templates, self.device).T
            cache.save("text", {"text": text})
        dev = self.device
        return feats["clip"].to(dev), feats["dino"].to(dev), feats["labels"].to(dev), text.to(dev)

    def on_test_epoch_end(self) -> None:
        for split in [s for s in self.eval_splits if s in self._features or s in self._caches]:
            clip_all, dino_all, y, text = self._split_features(split)
            dino_in = dino_all if self.dino is not None else None
            result = otfusion_predict(
                clip_all, text, dino_in, labels=y, solver=self.solver, **self.fusion_kwargs
            )
            values = {}
            for k in (1, 5):
                if k <= text.shape[0]:
                    values[f"top{k}"] = topk_accuracy(result.probs, y, k)
                    values[f"clip_top{k}"] = topk_accuracy(result.clip_prior, y, k)
            self.log_dict({f"test/{split}/{k}": v for k, v in values.items()}, sync_dist=False)
            # rows in dataset order (_split_features), the same on every rank
            self.epoch_outputs[split] = {"index": torch.arange(len(y)), "scores": result.probs,
                                         "targets": y}  # fmt: skip
            self._clip_top1[split] = float(values["clip_top1"])
        self._features, self._pending = {}, {}

    def prediction_summary(self, split: str) -> dict[str, Any]:
        dm = self.datamodule
        return {
            "method": "otfusion",
            "dataset": dm.dataset_name if dm is not None else None,
            "model": self.clip.model_name,
            "split": split,
            "clip_top1": self._clip_top1[split],
        }
