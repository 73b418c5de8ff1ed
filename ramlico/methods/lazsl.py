"""LaZSL as an evaluation-only LightningModule: crops <-> attribute descriptors by OT.

Per image: ``num_crops`` seeded square crops (:func:`ramlico.zeroshot.sample_crops`) are cut
from the preprocessed image and resized to the input size in one ``roi_align`` batch, encoded with
CLIP in chunks, and matched to every class's descriptor embeddings by the shared engine in one
call (:func:`ramlico.zeroshot.lazsl_scores`). Spec: ``lazsl.md``.

Deviation (documented): crops are cut from the already resized/normalised image rather than the
original file; boxes are seeded by the image's position in the evaluation order (``index``), so a
fixed data order gives identical crops across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from ramlico.backbones import CLIPBackbone
from ramlico.methods.base import RamlicoModule
from ramlico.zeroshot import (
    descriptor_texts,
    lazsl_scores,
    load_descriptors,
    pad_descriptor_embeddings,
    sample_crops,
)

__all__ = ["LaZSL"]

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
    ) -> None:
        super().__init__(ks=(1, 5))
        self.save_hyperparameters(ignore=["backbone"], logger=False)
        self.backbone = backbone
        self.descriptors = load_descriptors(resolve_descriptors_file(descriptors_file))
        self._desc_cache: dict[str, tuple[Tensor, Tensor]] = {}
        self._seen = 0

    def on_test_epoch_start(self) -> None:
        self._seen = 0

    def descriptor_embeddings(self, split: str) -> tuple[Tensor, Tensor]:
        """``(K, M_max, D)`` unit descriptor embeddings and ``(K, M_max)`` mask of ``split``."""
        if split not in self._desc_cache:
            hp = self.hparams
            names = self.label_names[split]
            # The file may describe more classes than this split ranks: use the split's ones.
            subset = {n: d for n, d in self.descriptors.items() if n in set(names)}
            texts = descriptor_texts(subset, names, prefix=hp.prefix, suffix=hp.suffix)
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

    def predict_scores(self, images: Tensor, split: str) -> Tensor:
        hp = self.hparams
        global_feat = F.normalize(self.backbone.embed_image(images), dim=-1)
        crop_feat = self.crop_embeddings(images)
        self._seen += images.shape[0]
        desc, mask = self.descriptor_embeddings(split)
        return lazsl_scores(
            global_feat, crop_feat, desc.to(global_feat.dtype), mask, theta=hp.theta, reg=hp.reg,
            max_iter=hp.max_iter, tol=hp.tol, class_chunk=hp.class_chunk, warn=False,
        )  # fmt: skip
