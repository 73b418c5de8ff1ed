"""Compose the real configs for tests, shrunk to seconds on CPU (template style)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "ramlico" / "configs")


def compose_cfg(
    config_name: str, tmp_path: Path, overrides: list[str] = (), hydra: bool = False
) -> DictConfig:
    """Compose ``config_name`` with overrides; outputs and data go to ``tmp_path``.

    ``hydra=True`` keeps Hydra's own node (``cfg.hydra``: the chosen experiment, the command
    line), as ``python train.py`` / ``evaluate.py`` see it.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "out")
        cfg.paths.data_dir = str(tmp_path / "data")
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


TOY_CLIP = "ramlico-toy-ViT"
TINY_CLIP = {"model_name": "ramlico-tiny-ViT", "pretrained": None, "init_seed": 0}
# RAM's block choices on the tiny CLIP's 2 blocks, and the prompt a random text tower separates
# best (the bare name; "a photo of a {}." maps every label to nearly one direction).
TINY_RAM = {"template": "{}", "saa_layers": [0, 1], "tss_layers": [1],
            "visual_prompt_layers": [1], "text_prompt_layers": [1]}  # fmt: skip


def tiny_backbones(cfg: DictConfig) -> DictConfig:
    """Swap the demos' toy CLIP for the tiny random one (fast mechanics tests).

    Every open_clip model of ``cfg.model`` that is the toy CLIP (``backbone``, OTFusion's ``clip``,
    LICO's ``text_encoder``) becomes ``ramlico-tiny-ViT`` with seeded random weights; RAM gets
    :data:`TINY_RAM`. Behaviour tests keep the toy CLIP.
    """
    with open_dict(cfg):
        for key in ("backbone", "clip", "text_encoder"):
            node = cfg.model.get(key)
            if node is not None and node.get("model_name") == TOY_CLIP:
                node.update(TINY_CLIP)
                if key == "backbone" and cfg.model._target_ == "ramlico.methods.RAM":
                    cfg.model.update(TINY_RAM)
    return cfg


def shrink(cfg: DictConfig, data_dir: Path, tiny: bool = True) -> DictConfig:
    """Small generated data, no progress bar, CPU; ``tiny``: the tiny random CLIP
    (:func:`tiny_backbones`)."""
    if tiny:
        tiny_backbones(cfg)
    with open_dict(cfg):
        cfg.data.root = str(data_dir)
        cfg.data.generated = {"n_train": 40, "n_test": 40, "image_size": 64, "seed": 0}
        cfg.data.num_workers = 0
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        if cfg.get("callbacks"):
            cfg.callbacks.pop("rich_progress_bar", None)
            cfg.callbacks.pop("model_summary", None)
    return cfg


LABELS = ("bus", "car", "cat", "dog", "sofa")


def write_custom_data(root: Path, n_train: int = 24, n_test: int = 12, seed: int = 0) -> Path:
    """A custom multi-label data set in the README's CSV format under ``root``.

    ``root/images/*.png`` (16 px, random colours), ``root/train.csv`` and ``root/test.csv`` with
    1-2 of :data:`LABELS` per image; every label occurs in both files.
    """
    import random

    from PIL import Image

    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = ["image,labels"]
        for i in range(n):
            name = f"images/{split}_{i:03d}.png"
            colour = tuple(rng.randrange(256) for _ in range(3))
            Image.new("RGB", (16, 16), colour).save(root / name)
            labels = {LABELS[i % len(LABELS)], rng.choice(LABELS)}
            rows.append(f"{name},{'|'.join(sorted(labels))}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def tiny_custom(cfg: DictConfig, epochs: int = 1) -> DictConfig:
    """ram_custom / clip_adapter on custom data, offline: tiny CLIP, 64 px, CPU, no loggers."""
    with open_dict(cfg):
        cfg.data.image_size = 64
        cfg.data.num_workers = 0
        cfg.data.batch_size = 8
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.max_epochs = epochs
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        cfg.callbacks.pop("rich_progress_bar", None)
        cfg.callbacks.pop("model_summary", None)
        cfg.logger = None
    return cfg
