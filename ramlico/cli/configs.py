"""Where the shipped configs are, and what they offer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_DIR", "CONFIG_MODULE", "list_experiments"]

#: Hydra's package path of the configs (works from any directory, no checkout needed)
CONFIG_MODULE = "pkg://ramlico.configs"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def list_experiments() -> list[str]:
    """Names of the shipped experiments (``configs/experiment/*.yaml``), sorted."""
    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
