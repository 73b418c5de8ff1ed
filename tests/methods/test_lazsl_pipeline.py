"""The whole LaZSL pipeline (decode -> global view -> crops -> scores) against a literal reading.

``test_pil_pipeline_equals_a_literal_float64_implementation`` runs LaZSL through Lightning on an
image folder (non-square RGB, greyscale and palette images) in ``crop_mode=pil`` with the tiny
CLIP in float64, and compares every score with a per-image, per-class float64 implementation of
the method written below from its description: the global view (PIL resize of the shorter side,
centre crop), the crops of the original image, vision selection, the hybrid similarity, the
scaling-form Sinkhorn with the reference's stopping rule, and the score. The other tests check
that the scores depend on the image and its dataset index only: batch size, order and loader
workers do not matter.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ramlico.data import ClassificationDataModule
from ramlico.data.classification import collate_samples
from ramlico.methods import LaZSL
from ramlico.methods.lazsl import resolve_descriptors_file

CLASSES = ["red circle", "blue star", "green cross"]
NUM_CROPS, SCALE, SEED, THETA, EPS, MAX_ITER, TOL = 6, (0.6, 0.9), 4, 0.8, 0.1, 100, 1e-2


def _natural(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(width, height))
    img = np.stack([np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((height, width)))))
                    for _ in range(3)], -1)  # fmt: skip
    img = (img - img.min()) / (img.max() - img.min())
    return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """7 images in 3 class folders: RGB PNG and JPEG, greyscale, palette; sizes all different."""
    root = tmp_path_factory.mktemp("lazsl_images")
    specs = [(97, 143, "RGB", "png"), (160, 90, "L", "png"), (120, 120, "P", "png"),
             (80, 150, "RGB", "jpg"), (211, 77, "RGB", "png"), (66, 70, "RGB", "png"),
             (130, 101, "L", "jpg")]  # fmt: skip
    for i, (w, h, mode, ext) in enumerate(specs):
        folder = root / CLASSES[i % 3].replace(" ", "_")
        folder.mkdir(exist_ok=True)
        _natural(w, h, i).convert(mode).save(folder / f"{i}.{ext}")
    return root


class Recording(LaZSL):
    """LaZSL that keeps every score row by dataset index."""

    def predict_scores(self, images, split):
        scores = super().predict_scores(images, split)
        for i, row in zip(self._batch_index.tolist(), scores, strict=True):
            self.recorded[i] = row.detach().clone()
        return scores


def _model(clip, **kw) -> Recording:
    solver = {"reg": EPS, "max_iter": MAX_ITER, "tol": TOL}
    opts = dict(num_crops=NUM_CROPS, crop_scale=SCALE, seed=SEED, theta=THETA, solver=solver,
                explain_images=0)  # fmt: skip
    model = Recording(clip, "generated_shapes", **{**opts, **kw})
    model.recorded = {}
    return model


def _run(model, datamodule, tmp_path) -> dict[int, torch.Tensor]:
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.test(model, datamodule=datamodule, verbose=False)
    return model.recorded


# ------------------------------------------------------------------ the literal reference
def _literal_preprocess(image: Image.Image, size: int, mean, std) -> np.ndarray:
    """Spec 3.1: shorter side -> size (bicubic, PIL), centre crop, RGB, /255, normalise."""
    w, h = image.size
    if (w <= h and w != size) or (h < w and h != size):
        new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        image = image.resize(new, Image.BICUBIC)
    w, h = image.size
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    image = image.crop((left, top, left + size, top + size)).convert("RGB")
    x = np.asarray(image, dtype=np.float64) / 255.0
    return ((x - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)


def _literal_crops(width: int, height: int, index: int) -> list[tuple[int, int, int, int]]:
    """Spec 3.2 steps 1-3 with the per-image generator seeded from (seed, dataset index)."""
    gen = torch.Generator().manual_seed((SEED * 1_000_003 + index) % (2**63))
    gammas = [SCALE[0] + (SCALE[1] - SCALE[0]) * torch.rand(1, generator=gen, dtype=torch.float64)
              for _ in range(NUM_CROPS)]  # step 1, every crop  # fmt: skip
    sides = [max(1, math.floor(float(g) * min(width, height))) for g in gammas]  # step 2
    tops = [int(float(torch.rand(1, generator=gen, dtype=torch.float64)) * (height - s + 1))
            for s in sides]  # step 3: top ~ U{0..H-s}  # fmt: skip
    lefts = [int(float(torch.rand(1, generator=gen, dtype=torch.float64)) * (width - s + 1))
             for s in sides]  # fmt: skip
    return [(x, y, x + s, y + s) for x, y, s in zip(lefts, tops, sides, strict=True)]


def _modify(s: str) -> str:
    if s.startswith("a"):
        return "which is " + s
    if s.startswith(("has", "often", "typically", "may", "can")):
        return "which " + s
    return ("which is " if s.startswith("used") else "which has ") + s


def _literal_score(z: torch.Tensor, q: torch.Tensor) -> float:
    """Spec 4-7 for one image and one class: z (1 + N, D) views, q (M, D) descriptors."""
    pg, p = z[0], z[1:]
    s_rg = p @ pg
    keep = (s_rg >= s_rg.mean()).double()
    r = keep / keep.sum()
    sim = THETA * p @ q.T + (1 - THETA) * (pg @ q.T)[None, :]
    kernel = torch.exp(-(1 - sim) / EPS)
    u, v = torch.ones(len(p), dtype=torch.float64), torch.ones(len(q), dtype=torch.float64)
    b = torch.full((len(q),), 1.0 / len(q), dtype=torch.float64)
    for _ in range(MAX_ITER):
        u_old = u
        u = r / (kernel @ v)
        v = b / (kernel.T @ u)
        if (u - u_old).abs().mean() < TOL:
            break
    plan = u[:, None] * kernel * v[None, :]
    return float((plan * sim).sum())


def _literal_scores(clip, path: Path, index: int, classes: list[str]) -> torch.Tensor:
    pre = clip.model.visual.preprocess_cfg
    size, mean, std = clip.image_size, pre["mean"], pre["std"]
    with Image.open(path) as img:
        img.load()
        views = [_literal_preprocess(img, size, mean, std)]
        views += [_literal_preprocess(img.crop(box), size, mean, std)
                  for box in _literal_crops(img.width, img.height, index)]  # fmt: skip
    descriptors = json.loads(resolve_descriptors_file("generated_shapes").read_text())
    with torch.no_grad():
        z = clip.model.encode_image(torch.from_numpy(np.stack(views)))
        z = z / z.norm(dim=-1, keepdim=True)
        scores = []
        for c in classes:
            q = clip.model.encode_text(
                clip.tokenize([f"{c}, " + _modify(s) for s in descriptors[c]])
            )
            scores.append(_literal_score(z, q / q.norm(dim=-1, keepdim=True)))
    return torch.tensor(scores, dtype=torch.float64)


@pytest.fixture(scope="module")
def clip64(tiny_clip):
    return copy.deepcopy(tiny_clip).double()


def test_pil_pipeline_equals_a_literal_float64_implementation(clip64, folder, tmp_path):
    dm = ClassificationDataModule(source="folder", root=str(folder), batch_size=3, num_workers=0)
    scores = _run(_model(clip64), dm, tmp_path)
    samples = dm.test_set.samples
    assert sorted(scores) == list(range(7)) and dm.label_names() == sorted(CLASSES)
    for index, (path, _) in enumerate(samples):
        literal = _literal_scores(clip64, path, index, dm.label_names())
        assert scores[index].dtype == torch.float64
        # float64 end to end; the engine's log-domain iterates equal the scaling form to ~1e-15
        torch.testing.assert_close(scores[index], literal, rtol=0, atol=1e-6)
    with Image.open(samples[0][0]) as img:
        assert img.size != (img.width, img.width)  # non-square: a squash-resize would differ


class Ordered(ClassificationDataModule):
    """The folder, loaded in a given order, batch size and number of workers."""

    def __init__(self, order, batch_size, workers, **kw):
        super().__init__(**kw)
        self.order, self.bs, self.workers = order, batch_size, workers

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.bs, sampler=self.order,
                          num_workers=self.workers, collate_fn=collate_samples)  # fmt: skip


@pytest.mark.parametrize("mode", ["pil", "tensor"])
def test_scores_depend_on_the_image_and_its_index_only(tiny_clip, folder, tmp_path, mode):
    runs = {}
    loads = [("plain", list(range(7)), 7, 0), ("batch 1", list(range(7)), 1, 0),
             ("reversed, batch 3", list(range(6, -1, -1)), 3, 0),
             ("shuffled, 2 workers", [3, 0, 6, 2, 5, 1, 4], 2, 2)]  # fmt: skip
    for name, order, bs, workers in loads:
        dm = Ordered(order, bs, workers, source="folder", root=str(folder))
        runs[name] = _run(_model(tiny_clip, crop_mode=mode), dm, tmp_path / name)
    ref = runs.pop("plain")
    assert sorted(ref) == list(range(7))
    for name, scores in runs.items():
        for i in range(7):
            # CLIP forwards of different batch compositions round differently in the last bits
            torch.testing.assert_close(scores[i], ref[i], rtol=0, atol=1e-6, msg=name)
    # ... while another crop seed does change the scores
    other = _run(
        _model(tiny_clip, crop_mode=mode, seed=SEED + 1),
        Ordered(list(range(7)), 7, 0, source="folder", root=str(folder)),
        tmp_path / "s",
    )
    assert max((other[i] - ref[i]).abs().max().item() for i in range(7)) > 1e-4
