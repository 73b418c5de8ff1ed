"""Build callbacks, loggers and the other run objects from their config groups."""

from __future__ import annotations

from typing import Any

import hydra
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

__all__ = ["instantiate_callbacks", "instantiate_loggers", "resolved_config"]


def _instantiate_group(cfg: DictConfig | None, kind: str) -> list[Any]:
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"the {kind} config must be a mapping of name -> {{_target_: ...}}")
    objects: list[Any] = []
    for name, sub in cfg.items():
        if isinstance(sub, DictConfig) and "_target_" in sub:
            objects.append(hydra.utils.instantiate(sub))
        elif sub is not None:
            raise ValueError(f"{kind}.{name!s} has no _target_; every entry must name its class")
    return objects


def instantiate_callbacks(cfg: DictConfig | None) -> list[Callback]:
    """Lightning callbacks from the ``callbacks`` group (a mapping name -> config)."""
    return _instantiate_group(cfg, "callbacks")


def instantiate_loggers(cfg: DictConfig | None) -> list[Logger]:
    """Lightning loggers from the ``logger`` group (a mapping name -> config)."""
    return _instantiate_group(cfg, "logger")


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run config with every interpolation resolved, as plain containers (checkpoint-safe)."""
    if "hydra" in cfg:  # a config composed with return_hydra_config: Hydra's own node stays out
        cfg = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}
