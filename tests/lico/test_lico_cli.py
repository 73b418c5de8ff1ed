"""train.py / evaluate.py on lico_demo (shrunk): LICO and CE baseline, saliency evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from ramlico.cli import evaluate, train
from ramlico.cli.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import tiny_backbones  # noqa: E402

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "ramlico" / "configs")


def demo_cfg(root: str, tmp: Path, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=root, overrides=["experiment=lico_demo", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / "out")
        cfg.paths.data_dir = str(tmp.parent / "data")
        cfg.paths.log_dir = str(tmp / "logs")
        cfg.data.image_size = 32
        if cfg.data.source == "generated":  # an option of the generated source only
            cfg.data.generated = {"n_per_class": 3, "image_size": 32, "seed": 0,
                                  "n_test_per_class": 1}  # fmt: skip
        cfg.data.batch_size = 30
        cfg.trainer.max_epochs = 1
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        cfg.callbacks.pop("rich_progress_bar", None)
        cfg.callbacks.pop("model_summary", None)
        cfg.logger = None
    return tiny_backbones(cfg)  # the tiny random text tower: mechanics, in seconds


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name, extra in (("lico", []), ("base", ["model.lico.enabled=false"])):
        tmp = tmp_path_factory.mktemp(name)
        metrics, objects = train(demo_cfg("train", tmp, extra))
        out[name] = (tmp, metrics, objects)
    return out


def test_lico_and_baseline_train_and_test(runs):
    _, lico, lobj = runs["lico"]
    _, base, bobj = runs["base"]
    for m in (lico, base):
        assert 0.0 <= m["test/test/top1"] <= 100.0 and m["test/test/top5"] >= m["test/test/top1"]
    for key in ("train/mm", "train/ot", "train/tau", "train/plan_entropy"):
        assert key in lico and key not in base
    assert 0.0 < lico["train/ot"] <= 4.0 and lico["train/tau"] > 0
    n = [sum(p.numel() for p in o["model"].export().parameters()) for o in (lobj, bobj)]
    assert n[0] == n[1]
    # the frozen text tower is bit-identical to a fresh build after training
    from ramlico.backbones import CLIPBackbone

    fresh = CLIPBackbone("ramlico-tiny-ViT", pretrained=None, init_seed=0).model
    tower = lobj["model"].lico_train["prompts"].text
    for name, value in tower.named_parameters():
        ref = fresh.get_parameter(name) if "." in name else getattr(fresh, name)
        assert torch.equal(value.detach().cpu(), ref.detach()), name


def test_checkpoints_hold_training_only_tensors_only_for_lico(runs):
    for name, has in (("lico", True), ("base", False)):
        tmp = runs[name][0]
        ckpt = load_checkpoint(tmp / "out" / "checkpoints" / "last.ckpt")
        keys = set(ckpt["state_dict"])
        assert ("lico_train.prompts.ctx" in keys) is has
        assert not any(".text." in k for k in keys)  # the frozen CLIP tower is never saved
        assert any(k.startswith("classifier.head.") for k in keys)


def test_evaluate_with_saliency_never_builds_the_text_side(runs):
    tmp, metrics, _ = runs["lico"]
    ckpt = tmp / "out" / "checkpoints" / "last.ckpt"
    ecfg = demo_cfg("eval", tmp / "eval", [f"ckpt_path={ckpt}", "eval.saliency=true",
                                           "eval.num_images=3", "eval.num_png=2"])  # fmt: skip
    emetrics, objects = evaluate(ecfg)
    assert objects["model"].lico_train is None
    assert emetrics["test/test/top1"] == pytest.approx(metrics["test/test/top1"], abs=1e-4)
    ins, dele = emetrics["saliency/gradcam/insertion"], emetrics["saliency/gradcam/deletion"]
    assert 0.0 <= dele <= 100.0 and 0.0 <= ins <= 100.0
    pngs = sorted((tmp / "eval" / "out" / "saliency" / "gradcam").glob("*.png"))
    assert [p.name for p in pngs] == ["0000.png", "0001.png"]


def test_a_checkpoint_on_other_classes_is_an_error_naming_both(runs, tmp_path):
    from PIL import Image

    from ramlico.cli.checkpoint import CheckpointMismatch

    tmp, _, _ = runs["base"]
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / split / cls / "a.png")
    ckpt = tmp / "out" / "checkpoints" / "last.ckpt"
    overrides = [f"ckpt_path={ckpt}", "data=imagefolder_train", f"data.root={tmp_path}"]
    ecfg = demo_cfg("eval", tmp / "other", overrides)
    with pytest.raises(
        CheckpointMismatch,
        match=r"was trained on 20 classes, this evaluation has "
        r"2 \(only in the checkpoint: .*only in this evaluation: \['cat', 'dog'\]",
    ):
        evaluate(ecfg, overrides=overrides)


@pytest.mark.parametrize(
    "name", ["lico_demo", "lico_cifar100_wrn", "lico_imagenet_r50", "lico_cub_r50_fewshot"]
)
def test_experiments_name_real_models_and_the_demo_stays_offline(name, tmp_path):
    import open_clip
    import timm

    import ramlico.methods.lico  # noqa: F401  (registers the CIFAR WRN in timm)

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name="train", overrides=[f"experiment={name}"])
    assert cfg.model._target_ == "ramlico.methods.LICOModule"
    assert timm.is_model(cfg.model.encoder.model_name)
    assert cfg.model.lico.alpha == 10.0 and cfg.model.lico.beta == 1.0
    text = cfg.model.text_encoder
    if name == "lico_demo":
        assert text.model_name == "ramlico-toy-ViT" and text.pretrained == "toy"  # bundled
        assert cfg.data.source == "generated" and cfg.model.encoder.pretrained is False
    else:
        assert text.model_name == "ViT-B-32" and text.pretrained == "openai"
        assert "openai" in open_clip.list_pretrained_tags_by_model("ViT-B-32")
        assert cfg.model.lico.n_ctx == 12
