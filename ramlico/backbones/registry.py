"""Registration of ramlico's own open_clip model configs (JSON files, open_clip's format).

``ramlico-tiny-ViT`` (embed 32, vision width 64 x 2 layers at 64 px with 16 px patches, text
width 64 x 2 layers, full 49,408-token vocabulary so the bundled BPE tokenizer works offline)
builds in a fraction of a second with random weights: the model of the fast unit tests.

``ramlico-toy-ViT`` (64 px, 8 px patches, vision width 96 x 4, text width 64 x 3, context 32) is
the architecture of the toy CLIP that this project trains itself (``python -m
ramlico.toy.train_clip``); its weights ship inside the package and load by the tag ``"toy"``
(:func:`bundled_weights`), offline. The toy vision-only model (timm ``regnetx_002`` trained by
``python -m ramlico.toy.train_vfm``, OTFusion's DINOv2 stand-in) ships the same way and loads
with ``TimmBackbone("regnetx_002", pretrained="toy")``.
"""

from __future__ import annotations

from pathlib import Path

import open_clip

__all__ = [
    "BUNDLED_WEIGHTS",
    "BUNDLED_WEIGHTS_DIR",
    "MODEL_CONFIG_DIR",
    "TOY_CLIP",
    "TOY_VFM",
    "bundled_weights",
    "list_bundled_weights",
    "list_clip_models",
    "register_model_configs",
]

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
BUNDLED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "toy" / "weights"
TOY_CLIP = "ramlico-toy-ViT"
#: The toy vision-only model (OTFusion's DINOv2 stand-in): a timm architecture name.
TOY_VFM = "regnetx_002"
#: Weights shipped inside the package: ``{model name: {tag: file in BUNDLED_WEIGHTS_DIR}}``
#: (open_clip names load through CLIPBackbone, timm names through TimmBackbone).
BUNDLED_WEIGHTS: dict[str, dict[str, str]] = {
    TOY_CLIP: {"toy": "clip_toy.safetensors"},
    TOY_VFM: {"toy": "vfm_toy.safetensors"},
}
_RETRAIN = {TOY_CLIP: "ramlico.toy.train_clip", TOY_VFM: "ramlico.toy.train_vfm"}
_registered: set[str] = set()


def list_bundled_weights() -> list[tuple[str, str]]:
    """``(model name, tag)`` of every set of weights shipped with ramlico."""
    return [(m, t) for m, tags in BUNDLED_WEIGHTS.items() for t in tags]


def bundled_weights(model_name: str, tag: str) -> Path | None:
    """The file of a bundled ``(model, tag)``; ``None`` if the pair is not a bundled one.

    Raises:
        FileNotFoundError: the pair is bundled but its file is missing (a broken install).
    """
    name = BUNDLED_WEIGHTS.get(model_name, {}).get(tag)
    if name is None:
        return None
    path = BUNDLED_WEIGHTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled weights {model_name!r}/{tag!r} missing: {path}; reinstall ramlico or "
            f"retrain them with `python -m {_RETRAIN[model_name]} --install`"
        )
    return path


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
