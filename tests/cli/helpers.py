"""Compose the real configs for tests, shrunk to seconds on CPU (template style)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "ramlico" / "configs")


def compose_cfg(config_name: str, tmp_path: Path, overrides: list[str] = ()) -> DictConfig:
    """Compose ``config_name`` with overrides; outputs and data go to ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "out")
        cfg.paths.data_dir = str(tmp_path / "data")
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


def shrink(cfg: DictConfig, data_dir: Path) -> DictConfig:
    """Small generated data, no progress bar, CPU."""
    with open_dict(cfg):
        cfg.data.root = str(data_dir)
        cfg.data.generated = {"n_train": 40, "n_test": 40, "image_size": 64, "seed": 0}
        cfg.data.num_workers = 0
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_model_summary = False
        cfg.callbacks.pop("rich_progress_bar", None)
        cfg.callbacks.pop("model_summary", None)
    return cfg
