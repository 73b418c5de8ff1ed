"""What each demo shows on the toy CLIP, across 3 seeds, with margins (docs/toy_world.md).

Small versions of the demos (fewer epochs / images than `make demo`), so the margins here are the
conservative ones; the demos' own numbers are in README "Results". Each test prints its figures
(`python -m pytest -s tests/toy/test_demo_behaviour.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg  # noqa: E402

from ramlico.backbones import CLIPBackbone  # noqa: E402
from ramlico.backbones.registry import TOY_CLIP  # noqa: E402
from ramlico.cli import evaluate, train  # noqa: E402
from ramlico.data.generated import GENERATED_CLASSES  # noqa: E402
from ramlico.data.scenes import generated_classification_scenes  # noqa: E402

CHANCE = 100.0 / len(GENERATED_CLASSES)  # 20 labels: 5 %
SEEDS = [0, 1, 2]
# Shortened demos (the margins below are measured on these; observed values in the docstrings).
# (region scoring off here: the README's full lico_demo runs score LICO's Grad-CAM regions)
LICO_SHORT = ["experiment=lico_demo", "trainer.max_epochs=8", "data.generated.n_per_class=20",
              "eval.regions=false"]  # fmt: skip
SINGLE_PER_CLASS = 5  # hard single-label test images per class (100 images)
# RAM (the shared `toy_ram` runs, 5 epochs: tests/toy/conftest.py) minus zero-shot CLIP, seeds
# 0-2 (observed): ZSL mAP +2.2 / +3.6 / +3.5, GZSL mAP +4.3 / +3.5 / +4.5, GZSL F1@3 +2.5 / +2.0 /
# +1.3 (the full demo: README Results).
RAM_ZSL_MAP_GAIN = 0.5  # points RAM must gain over zero-shot CLIP on ZSL mAP
RAM_GZSL_MAP_GAIN = 2.5  # ... on GZSL mAP
RAM_F1_GAIN = 1.0  # ... on GZSL F1@3
LAZSL_MARGIN = 3.0  # top-1 points LaZSL may lose to CLIP (seeds 0-2: +3, +5, +1; 100 images)
# OTFusion on the demo's own set size (10 per class: transduction needs a few images per class)
OTFUSION_PER_CLASS = 10
OTFUSION_GAIN = 2.0  # top-1 points OTFusion must gain over its CLIP prior (seeds 0-2: +4, +7, +4)
pytestmark = pytest.mark.slow


def _quiet(cfg, data_root: Path):
    with open_dict(cfg):
        cfg.data.root = str(data_root)
        cfg.data.num_workers = 0
        cfg.logger = None
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        if cfg.get("callbacks"):
            for key in (
                "rich_progress_bar",
                "model_summary",
                "evaluation_writer",
                "zero_shot_writer",
            ):
                cfg.callbacks.pop(key, None)
    return cfg


def _run(task: str, tmp: Path, data_root: Path, overrides: list[str], **data) -> dict:
    cfg = _quiet(compose_cfg("train" if task == "train" else "eval", tmp, overrides), data_root)
    with open_dict(cfg):
        for key, value in data.items():
            cfg.data.generated[key] = value
    return (train if task == "train" else evaluate)(cfg)[0]


# --------------------------------------------------------------- zero-shot CLIP, every label
@pytest.mark.parametrize("seed", SEEDS)
def test_zero_shot_clip_is_far_above_chance_on_every_label(seed):
    """New scenes (data seeds 0-2, one shape per image, 10 per label): top-1 per label."""
    from ramlico.data.transforms import build_eval_transform

    clip = CLIPBackbone(TOY_CLIP, pretrained="toy")
    transform = build_eval_transform(64)
    scenes = list(generated_classification_scenes(10, 64, seed))
    images = torch.stack([transform(img) for _, _, img, _ in scenes])
    index = {c: i for i, c in enumerate(GENERATED_CLASSES)}
    y = torch.tensor([index[c] for c, _, _, _ in scenes])
    with torch.no_grad():
        pred = (clip.embed_image(images) @ clip.zero_shot_classifier(GENERATED_CLASSES)).argmax(1)
    per_label = [100.0 * (pred[y == c] == c).float().mean().item() for c in range(20)]
    overall = 100.0 * (pred == y).float().mean().item()
    print(f"seed {seed}: top-1 {overall:.1f}, worst label {min(per_label):.1f} (chance {CHANCE})")
    assert overall >= 14 * CHANCE  # >= 70 %
    assert min(per_label) >= 6 * CHANCE  # every one of the 20 labels: >= 30 %


# --------------------------------------------------------------- RAM vs zero-shot CLIP
@pytest.fixture(scope="module")
def zero_shot_multilabel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zs")
    root = tmp_path_factory.getbasetemp() / "gen"
    return _run("eval", tmp, root, ["experiment=clip_zeroshot_demo"])


@pytest.mark.parametrize("seed", SEEDS)
def test_trained_ram_beats_zero_shot_clip(seed, zero_shot_multilabel, toy_ram):
    """ram_demo (shortened) against zero-shot CLIP on the same toy CLIP, test splits of 160 images.

    RAM gains on ZSL and GZSL mAP and on GZSL F1@3 for every seed. ZSL F1@3 is at its ceiling
    for both (5 unseen labels, mostly one per image: R@3 is 100 %), so there it can only tie.
    """
    zs, (ram, _) = zero_shot_multilabel, toy_ram[seed]
    keys = ("zsl/mAP", "gzsl/mAP", "zsl/F1@3", "gzsl/F1@3")
    print(f"seed {seed}: " + ", ".join(
        f"{k} RAM {ram['test/' + k]:.1f} CLIP {zs['test/' + k]:.1f}" for k in keys))  # fmt: skip
    assert ram["test/zsl/mAP"] > zs["test/zsl/mAP"] + RAM_ZSL_MAP_GAIN
    assert ram["test/gzsl/mAP"] > zs["test/gzsl/mAP"] + RAM_GZSL_MAP_GAIN
    assert ram["test/gzsl/F1@3"] > zs["test/gzsl/F1@3"] + RAM_F1_GAIN
    assert zs["test/zsl/R@3"] == 100.0 and ram["test/zsl/F1@3"] == zs["test/zsl/F1@3"]
    assert zs["test/gzsl/mAP"] >= 10 * CHANCE and zs["test/zsl/mAP"] >= 10 * CHANCE


# --------------------------------------------------------------- LaZSL and OTFusion vs CLIP
@pytest.mark.parametrize("seed", SEEDS)
def test_lazsl_is_not_worse_than_clip_by_more_than_the_margin(seed, tmp_path):
    """The hard single-label set (data seed ``seed``): LaZSL vs zero-shot CLIP, same embeddings."""
    root, data = tmp_path / "hard", {"test_seed": seed, "n_test_per_class": SINGLE_PER_CLASS}
    common = ["experiment=lazsl_demo", "model.explain_images=0"]
    lazsl = _run("eval", tmp_path / "a", root, common, **data)["test/test/top1"]
    clip = _run("eval", tmp_path / "b", root, [*common, "model.method=clip"], **data)
    clip = clip["test/test/top1"]
    print(f"seed {seed}: LaZSL {lazsl:.1f} CLIP {clip:.1f}")
    assert lazsl >= clip - LAZSL_MARGIN
    assert lazsl >= 8 * CHANCE


@pytest.mark.parametrize("seed", SEEDS)
def test_otfusion_improves_on_its_clip_prior(seed, tmp_path):
    """The hard single-label set: OTFusion (the toy CLIP fused with the toy VFM, paper defaults)
    against its own CLIP prior, one run."""
    data = {"test_seed": seed, "n_test_per_class": OTFUSION_PER_CLASS}
    m = _run("eval", tmp_path, tmp_path / "hard", ["experiment=otfusion_demo"], **data)
    fused, prior = m["test/test/top1"], m["test/test/clip_top1"]
    print(f"seed {seed}: OTFusion {fused:.1f} CLIP prior {prior:.1f}")
    assert fused >= prior + OTFUSION_GAIN
    assert prior >= 8 * CHANCE


# --------------------------------------------------------------- LICO and its CE baseline
@pytest.mark.parametrize("seed", SEEDS)
def test_lico_and_its_ce_baseline_both_learn(seed, tmp_path, tmp_path_factory):
    """lico_demo (shortened) with the toy CLIP's text tower, and the same run without LICO's
    losses: both far above chance (seeds 0-2, 8 epochs on 20 images per class: LICO 49.5 / 56.5 /
    40.0, CE 63.0 / 55.5 / 45.0 top-1). Which one wins varies by seed: reported, not asserted."""
    root = tmp_path_factory.getbasetemp() / "sup"
    common = [f"seed={seed}", *LICO_SHORT]
    lico = _run("train", tmp_path / "a", root, common)["test/test/top1"]
    base = _run("train", tmp_path / "b", root, [*common, "model.lico.enabled=false"])
    base = base["test/test/top1"]
    print(f"seed {seed}: LICO {lico:.1f} CE baseline {base:.1f}")
    assert min(lico, base) >= 5 * CHANCE  # >= 25 % (chance 5 %)
