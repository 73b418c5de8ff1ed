"""Rank-aware logging: messages from rank 0 only, unless asked otherwise."""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

__all__ = ["get_logger", "stdlib_logger"]


class _RankZeroAdapter(logging.LoggerAdapter):
    """Logs only on global rank 0 (``rank_zero_only.rank``); ``rank=None`` in a call logs on all."""

    def log(  # type: ignore[override]  # adds the keyword-only rank_zero  # noqa: D102
        self, level: int, msg: object, *args: object, rank_zero: bool = True, **kwargs: Any
    ) -> None:
        if not self.isEnabledFor(level):
            return
        if rank_zero and getattr(rank_zero_only, "rank", 0) != 0:
            return
        msg, options = self.process(msg, kwargs)
        self.logger.log(level, msg, *args, **options)


def get_logger(name: str) -> logging.LoggerAdapter:
    """A logger that writes on global rank 0 only (Lightning's ``rank_zero_only.rank``)."""
    return _RankZeroAdapter(logging.getLogger(name), {})


def stdlib_logger(name: str | None = None) -> logging.Logger:
    """The plain stdlib logger ``name`` (the root logger for ``None``), to *configure* (levels,
    filters, handlers of third-party loggers); ramlico's own messages go through
    :func:`get_logger`."""
    return logging.getLogger(name)
