"""Build a model, its preprocessing, labels and calibration from a checkpoint or a config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ramlico.data.transforms import CLIP_MEAN, CLIP_STD, build_eval_transform
from ramlico.methods.base import RamlicoModule
from ramlico.predict.calibration import Calibration

__all__ = ["Built", "build_from_checkpoint", "build_from_config", "build_from_experiment",
           "eval_transform_from_data_config"]  # fmt: skip

#: label lists a checkpoint offers as the default ``labels``, most complete first
DEFAULT_LABEL_SPLITS = ("gzsl", "test", "train")


@dataclass
class Built:
    """A ready model with what it needs to tag images."""

    model: RamlicoModule
    transform: Any
    calibration: Calibration
    labels: list[str] | None
    config: dict[str, Any]
    normalization: tuple[Sequence[float], Sequence[float]] = (CLIP_MEAN, CLIP_STD)


def _normalization(data: Mapping[str, Any] | None) -> tuple[Sequence[float], Sequence[float]]:
    data = dict(data or {})
    return tuple(data.get("mean") or CLIP_MEAN), tuple(data.get("std") or CLIP_STD)


def eval_transform_from_data_config(data: Mapping[str, Any] | None) -> Any:
    """The evaluation transform of a run's data config (image size, mean, std)."""
    data = dict(data or {})
    return build_eval_transform(
        int(data.get("image_size") or 224), data.get("mean") or CLIP_MEAN,
        data.get("std") or CLIP_STD,
    )  # fmt: skip


def _default_labels(label_names: Mapping[str, Sequence[str]] | None) -> list[str] | None:
    for split in DEFAULT_LABEL_SPLITS:
        if label_names and label_names.get(split):
            return list(label_names[split])
    return None


def build_from_checkpoint(
    path: str | Path, cfg: DictConfig | None = None, ema: bool | None = None
) -> Built:
    """Rebuild the model of a ``train.py`` checkpoint from the checkpoint alone.

    The model config, the preprocessing (image size, mean, std of its data config) and the label
    names come from the checkpoint. With ``cfg`` (the composed ``predict.py`` config) the
    checkpoint's run is restored as ``evaluate.py`` does
    (:func:`ramlico.cli.checkpoint.restore_run`: ``model.*`` overrides of the command line apply,
    a contradicting experiment or preprocessing is an error). ``ema``: the EMA average
    (``True``), the live weights (``False``) or as the run validated (``None``: the average when
    it evaluated with one) -- the weights the calibration was fitted on.
    """
    from ramlico.callbacks.ema import load_ema_average
    from ramlico.cli.checkpoint import load_checkpoint, restore_run  # ramlico.cli imports us

    data: Mapping[str, Any] | None
    if cfg is not None and cfg.get("use_checkpoint_config", True):
        restored = restore_run(cfg, path)
        ckpt, model_cfg, data = restored.ckpt, restored.model_cfg, restored.preprocessing
    else:
        ckpt = load_checkpoint(path)
        config = ckpt["ramlico"].get("config") or {}
        if cfg is not None:
            model_cfg = cfg.model
        elif config.get("model"):
            model_cfg = OmegaConf.create(config["model"])
        else:
            raise ValueError(f"{path} holds no model config; pass the model config explicitly")
        data = config.get("data")
    meta = ckpt["ramlico"]
    model = hydra.utils.instantiate(model_cfg, _convert_="all")
    model.label_names = {k: list(v) for k, v in (meta.get("label_names") or {}).items()}
    model.on_load_checkpoint(ckpt)
    model.load_state_dict(ckpt["state_dict"], strict=False)
    load_ema_average(model, ckpt, ema)
    return Built(
        model=model,
        transform=eval_transform_from_data_config(data),
        calibration=Calibration.from_dict(meta.get("calibration")),
        labels=_default_labels(meta.get("label_names")),
        config=meta.get("config") or {},
        normalization=_normalization(data),
    )


def build_from_config(cfg: DictConfig) -> Built:
    """A training-free method from a composed run config (``experiment=clip_zeroshot_demo``).

    Raises:
        ValueError: the method is trained (it needs ``ckpt_path``).
    """
    cls = hydra.utils.get_class(cfg.model._target_)
    if not getattr(cls, "eval_only", False):
        raise ValueError(
            f"{cfg.model._target_} is a trained method: pass its checkpoint "
            "(ckpt_path=.../checkpoints/last.ckpt) instead of an experiment"
        )
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    data: dict[str, Any] = {}
    if "data" in cfg and cfg.data:
        data = {k: cfg.data.get(k) for k in ("image_size", "mean", "std")}
    config = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(config, dict)  # cfg.model is a mapping (it has a _target_)
    return Built(model, eval_transform_from_data_config(data), Calibration(), None,
                 {str(k): v for k, v in config.items()}, _normalization(data))  # fmt: skip


def build_from_experiment(name: str, overrides: Sequence[str] = ()) -> Built:
    """Compose the shipped ``eval`` config with ``experiment=name`` and build its method."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ramlico.cli.configs import list_experiments

    if name not in list_experiments():
        raise FileNotFoundError(
            f"{name!r} is neither a checkpoint file nor an experiment; experiments: "
            f"{list_experiments()}"
        )
    GlobalHydra.instance().clear()
    with initialize_config_module("ramlico.configs", version_base="1.3"):
        cfg = compose("eval", overrides=[f"experiment={name}", *overrides])
    return build_from_config(cfg)
