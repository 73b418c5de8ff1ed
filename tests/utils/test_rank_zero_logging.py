"""Text logging in ramlico goes through the rank-zero logger (no line repeated per DDP rank)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from pathlib import Path

import pytest
from lightning.pytorch.utilities import rank_zero_only

import ramlico
from ramlico.utils import get_logger
from ramlico.utils.logging import _RankZeroAdapter

PACKAGE = Path(ramlico.__file__).parent


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages([str(PACKAGE)], prefix="ramlico.")]


def test_no_module_uses_a_plain_stdlib_logger():
    plain = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "logging.py" and path.parent.name == "utils":
            continue  # the one place that wraps logging.getLogger
        if re.search(r"logging\.getLogger\(", path.read_text()):
            plain.append(str(path.relative_to(PACKAGE)))
    assert plain == []


def test_every_module_logger_is_rank_zero():
    names = _modules()
    assert len(names) > 40  # the walk found the package
    loggers = {}
    for name in names:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, (logging.Logger, logging.LoggerAdapter)):
                loggers[f"{name}.{attr}"] = value
    assert "ramlico.data.datamodule.log" in loggers and "ramlico.backbones.clip.log" in loggers
    wrong = sorted(k for k, v in loggers.items() if not isinstance(v, _RankZeroAdapter))
    assert wrong == []


@pytest.mark.parametrize(("rank", "emitted"), [(0, True), (1, False)])
def test_only_rank_zero_writes(caplog, monkeypatch, rank, emitted):
    monkeypatch.setattr(rank_zero_only, "rank", rank)
    log = get_logger("ramlico.data.datamodule")
    with caplog.at_level(logging.INFO, logger="ramlico.data.datamodule"):
        log.info("scanned %d images", 3)
        log.warning("from every rank", rank_zero=False)
    messages = [r.getMessage() for r in caplog.records]
    assert ("scanned 3 images" in messages) is emitted
    assert "from every rank" in messages  # rank_zero=False logs on every rank
