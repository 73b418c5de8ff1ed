"""Hyper-parameters to every logger: the resolved run config plus parameter counts.

``log_hyperparameters`` sends the config (``resolved_config``: interpolations resolved, ``hydra``
node dropped) to each logger when the run starts: CSV and TensorBoard write it to their
``hparams.yaml``, W&B into the run's config. TensorBoard's HPARAMS tab needs metrics next to the
values, so :func:`log_hparams_metrics` writes them once more with the final metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from torch import nn

__all__ = ["hyperparameters", "log_hparams_metrics", "log_hyperparameters"]


def hyperparameters(config: Mapping[str, Any], model: nn.Module) -> dict[str, Any]:
    """``config`` plus ``model/params/{total,trainable,non_trainable}`` (template naming)."""
    params = dict(config)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params["model/params/total"] = total
    params["model/params/trainable"] = trainable
    params["model/params/non_trainable"] = total - trainable
    return params


def log_hyperparameters(loggers: Sequence[Logger], params: Mapping[str, Any]) -> None:
    """``logger.log_hyperparams(params)`` for every logger (rank zero only, as Lightning's are)."""
    for logger in loggers:
        logger.log_hyperparams(dict(params))


def log_hparams_metrics(
    loggers: Sequence[Logger], params: Mapping[str, Any], metrics: Mapping[str, float]
) -> None:
    """TensorBoard loggers: the hyper-parameters with the final ``metrics`` (HPARAMS tab).

    Called after the Trainer has finalised its loggers; the writer is closed again here.
    """
    if not metrics:
        return
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics={k: float(v) for k, v in metrics.items()})
            logger.finalize("success")
