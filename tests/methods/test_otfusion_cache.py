"""OTFusion's resumable feature cache: written in chunks, re-read without encoders, resumed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.cli import evaluate
from ramlico.zeroshot.feature_cache import FeatureCache

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "ramlico" / "configs")


@pytest.fixture
def calls(monkeypatch):
    """Count image-encoder and text-encoder calls (patched on the classes)."""
    counts = {"clip": 0, "dino": 0, "text": 0}

    def counting(name, fn):
        def wrapper(self, *args, **kwargs):
            counts[name] += 1
            return fn(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(CLIPBackbone, "embed_image", counting("clip", CLIPBackbone.embed_image))
    monkeypatch.setattr(TimmBackbone, "forward", counting("dino", TimmBackbone.forward))
    monkeypatch.setattr(CLIPBackbone, "zero_shot_classifier",
                        counting("text", CLIPBackbone.zero_shot_classifier))  # fmt: skip
    return counts


def _run(tmp_path, run, cache, overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(
            "eval", overrides=["experiment=otfusion_demo", *overrides]
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / run / "out")
        cfg.data.root = str(tmp_path / "gen_cls")
        cfg.data.generated.n_test_per_class = 4  # 80 images
        cfg.data.batch_size = 8  # 10 batches
        cfg.model.cache_dir = str(cache)
        cfg.model.cache_chunk_batches = 3  # chunks of 3, 3, 3, 1 batches
        cfg.logger = None
        cfg.callbacks = None
        cfg.trainer.enable_progress_bar = False
    metrics = evaluate(cfg)[0]
    with open(tmp_path / run / "out" / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    return metrics, rows


def test_cache_is_written_reread_without_encoders_and_resumed(tmp_path, calls):
    cache = tmp_path / "cache"
    first, rows = _run(tmp_path, "a", cache)
    assert calls == {"clip": 10, "dino": 10, "text": 1}
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("chunk_*.pt")) == [
        f"chunk_{i:06d}.pt" for i in range(4)
    ]
    parts = [torch.load(folder / f"chunk_{i:06d}.pt") for i in range(4)]
    assert [len(p["labels"]) for p in parts] == [24, 24, 24, 8]
    assert parts[0]["clip"].shape == (24, 64) and parts[0]["dino"].shape == (24, 368)
    assert len(rows) == 80 and [int(r["index"]) for r in rows] == list(range(80))

    for key in calls:
        calls[key] = 0
    second, rows2 = _run(tmp_path, "b", cache)
    assert calls == {"clip": 0, "dino": 0, "text": 0}  # features and text from the cache
    assert second == pytest.approx(first, abs=1e-6) and rows2 == rows

    # A killed extraction: the third chunk never finished. Only its 3 batches are encoded.
    (folder / "chunk_000002.pt").unlink()
    third, rows3 = _run(tmp_path, "c", cache)
    assert calls == {"clip": 3, "dino": 3, "text": 0}
    assert third == pytest.approx(first, abs=1e-6) and rows3 == rows

    # Another model config (templates) gets its own cache entry: nothing stale is read.
    for key in calls:
        calls[key] = 0
    _run(tmp_path, "d", cache, ["model.templates=['a drawing of a {}.']"])
    assert calls == {"clip": 10, "dino": 10, "text": 1}
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_cache_manifest_mismatch_and_missing_chunks_raise(tmp_path):
    cache = FeatureCache(tmp_path, {"model": "a"}, num_chunks=2)
    cache.save_chunk(0, {"x": torch.arange(3.0)})
    assert cache.done_chunks() == [0] and not cache.complete
    with pytest.raises(FileNotFoundError, match=r"lacks chunks \[1\]"):
        cache.load_all()
    cache.save_chunk(1, {"x": torch.arange(2.0)})
    assert torch.equal(FeatureCache(tmp_path, {"model": "a"}, 2).load_all()["x"],
                       torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0]))  # fmt: skip
    with pytest.raises(ValueError, match="stale feature cache"):
        FeatureCache(tmp_path, {"model": "a"}, num_chunks=3)
    assert not list(cache.folder.glob(".*.tmp"))  # writes are atomic renames


def test_dino_input_is_renormalised_to_imagenet_statistics(tiny_clip):
    from ramlico.methods import OTFusion

    dino = TimmBackbone("vit_small_patch14_dinov2", img_size=56, depth=1, freeze=True)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    model = OTFusion(tiny_clip, dino)
    pixels = images * torch.tensor(tiny_clip.image_std).view(1, 3, 1, 1) + torch.tensor(
        tiny_clip.image_mean
    ).view(1, 3, 1, 1)
    imagenet = (pixels - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(model.dino_input(images), imagenet, rtol=0, atol=1e-5)
    assert torch.equal(OTFusion(tiny_clip, dino, dino_norm="clip").dino_input(images), images)
    with pytest.raises(ValueError, match="dino_norm"):
        OTFusion(tiny_clip, dino, dino_norm="dino")
