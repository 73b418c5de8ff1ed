"""Static checks run with the suite (so ``make test`` and CI run them): ruff lint and mypy.

The mypy configuration (strictness, per-module settings) is in pyproject.toml; docs/development.md
says what is checked and why. mypy's incremental cache lives in ``tmp/.mypy_cache`` (ignored by
git), so a re-run with few changed files takes seconds.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff not installed")
def test_ruff_finds_nothing() -> None:
    res = _run("ruff", "check", "ramlico", "tests", "benchmarks", "tools")
    assert res.returncode == 0, f"ruff check failed:\n{res.stdout}{res.stderr}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_mypy_passes_on_the_package() -> None:
    res = _run("mypy")  # files, strictness and cache dir from [tool.mypy] in pyproject.toml
    assert res.returncode == 0, f"mypy found type errors:\n{res.stdout}{res.stderr}"
    assert "Success: no issues found" in res.stdout, res.stdout
