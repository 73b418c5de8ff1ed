"""Every config key that an error message or a log line of ramlico tells the user to set exists.

The messages are read from the source (every string constant that is not a docstring: error and
log messages and their f-string parts); each ``data.x`` / ``model.x.y`` / ``callbacks.x`` / ...
they name must be a key of a config that ``train.py`` or ``evaluate.py`` composes (any
experiment), and each ``group=choice`` they suggest must be a file of that config group.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

from helpers import CONFIG_DIR, compose_cfg
from omegaconf import OmegaConf

PACKAGE = Path(__file__).resolve().parents[2] / "ramlico"
KEY = re.compile(
    r"(?<![\w./-])((?:data|model|trainer|callbacks|eval|paths|logger)(?:\.[A-Za-z_]\w*)+)"
)
GROUP = re.compile(
    r"(?<![\w./-])(data|model|callbacks|trainer|logger|experiment|model/backbone|debug)=([a-z_]\w*)"
)


def _message_strings(tree: ast.AST):
    """Every string constant that is not a docstring (messages, f-string parts, defaults)."""
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add(id(value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.value, node.lineno


def _hints() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for text, line in _message_strings(ast.parse(path.read_text())):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            for m in KEY.finditer(text):
                found.setdefault(m.group(1), where)
            for m in GROUP.finditer(text):
                found.setdefault(f"{m.group(1)}={m.group(2)}", where)
    return found


@lru_cache(maxsize=1)
def _configs(tmp: str) -> list:
    experiments = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
    cfgs = []
    for name in ("train", "eval"):
        for exp in experiments:
            cfgs.append(compose_cfg(name, Path(tmp), [f"experiment={exp}"]))
        cfgs.append(compose_cfg(name, Path(tmp), ["callbacks=early_stopping"]))
    return cfgs


def _exists(cfgs, key: str) -> bool:
    missing = object()
    return any(OmegaConf.select(c, key, default=missing, throw_on_missing=False) is not missing
               for c in cfgs)  # fmt: skip


def test_the_scan_finds_the_hints():
    hints = _hints()
    assert {"data.skip_bad_images", "data.val_fraction", "callbacks=early_stopping",
            "data.allow_empty_labels"} <= set(hints)  # fmt: skip
    assert len(hints) > 30


def test_every_key_a_message_names_exists(tmp_path):
    cfgs = _configs(str(tmp_path))
    wrong = []
    for hint, where in sorted(_hints().items()):
        if "=" in hint:
            group, choice = hint.split("=")
            if not (Path(CONFIG_DIR) / group / f"{choice}.yaml").is_file():
                wrong.append(f"{where}: {hint} (no configs/{group}/{choice}.yaml)")
        elif not _exists(cfgs, hint):
            wrong.append(f"{where}: {hint}")
    assert wrong == []
