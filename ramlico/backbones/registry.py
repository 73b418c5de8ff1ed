"""Registration of ramlico's own open_clip model configs (JSON files, open_clip's format).

``ramlico-tiny-ViT`` (embed 32, vision width 64 x 2 layers at 64 px with 16 px patches, text
width 64 x 2 layers, full 49,408-token vocabulary so the bundled BPE tokenizer works offline)
builds in a fraction of a second with random weights: the model of the tests and the demo.
"""

from __future__ import annotations

from pathlib import Path

import open_clip

__all__ = ["MODEL_CONFIG_DIR", "register_model_configs", "list_clip_models"]

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
_registered: set[str] = set()


def register_model_configs(path: str | Path = MODEL_CONFIG_DIR) -> None:
    """Add every ``*.json`` config in ``path`` (a file or folder) to open_clip's registry."""
    key = str(Path(path).resolve())
    if key in _registered:
        return
    if not Path(path).exists():
        raise FileNotFoundError(f"open_clip model config path not found: {path}")
    open_clip.add_model_config(path)
    _registered.add(key)


def list_clip_models() -> list[str]:
    """Every open_clip architecture name, ramlico's tiny configs included."""
    register_model_configs()
    return open_clip.list_models()
