"""``task_wrapper``: the error handling around train(cfg) / evaluate(cfg) (template style).

The task fills an ``objects`` dict as it builds things; whatever happens, the wrapper

* logs a failure with its traceback and the run's output folder (Hydra's job log file keeps it),
* finalises the loggers the task had built with status ``"failed"`` (Lightning does so only for
  exceptions inside ``fit``/``test``; a failure in between left CSV/TensorBoard files unflushed),
* closes an open W&B run, so the next job of a ``--multirun`` sweep starts its own run,

and re-raises the exception.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from ramlico.utils import get_logger

__all__ = ["task_wrapper"]

log = get_logger(__name__)
#: ``task(cfg, objects) -> (metrics, objects)``; the metrics of ``predict`` are its records.
Task = Callable[[DictConfig, dict[str, Any]], tuple[Any, dict[str, Any]]]


def _close_loggers(loggers: list[Any], status: str) -> None:
    for logger in loggers:
        try:
            logger.finalize(status)
        except Exception as err:  # noqa: BLE001 - the task's own error is the one to raise
            log.warning("could not finalise logger %s: %s", type(logger).__name__, err)


def _finish_wandb(failed: bool) -> None:
    wandb = sys.modules.get("wandb")  # only if the run imported it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        log.info("closing the W&B run")
        wandb.finish(exit_code=1 if failed else 0)


def task_wrapper(task: Task) -> Callable[[DictConfig], tuple[Any, dict[str, Any]]]:
    """Wrap ``task(cfg, objects, **kw)`` as ``task(cfg, **kw) -> (metrics, objects)`` with failure
    handling.

    ``objects`` starts empty; the task adds what it builds (``"loggers"`` is the list that is
    finalised on failure) and returns it.
    """

    @functools.wraps(task)
    def run(cfg: DictConfig, **kwargs: Any) -> tuple[dict[str, float], dict[str, Any]]:
        objects: dict[str, Any] = {}
        failed = True
        try:
            result = task(cfg, objects, **kwargs)
            failed = False
            return result
        except Exception:
            where = (cfg.get("paths") or {}).get("output_dir", "?")
            log.exception("%s failed; output dir: %s", cfg.get("task_name", task.__name__), where)
            _close_loggers(list(objects.get("loggers") or []), "failed")
            raise
        finally:
            _finish_wandb(failed)

    return run
