"""Shared fixtures: the tiny random open_clip model (no weights are ever downloaded in tests)."""

from __future__ import annotations

import os

import pytest
import torch

TINY_CLIP = "ramlico-tiny-ViT"


@pytest.fixture(scope="session")
def tiny_clip():
    """A frozen, seeded tiny CLIPBackbone (64 px, width 64, 2 layers); built once per session."""
    from ramlico.backbones import CLIPBackbone

    return CLIPBackbone(TINY_CLIP, pretrained=None, init_seed=0)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True, scope="session")
def _image_check_cache(tmp_path_factory):
    """Image-check results are cached in a session folder, never in ~/.cache (subprocesses too)."""
    old = os.environ.get("RAMLICO_CACHE_DIR")
    os.environ["RAMLICO_CACHE_DIR"] = str(tmp_path_factory.mktemp("ramlico_cache"))
    yield
    if old is None:
        os.environ.pop("RAMLICO_CACHE_DIR", None)
    else:
        os.environ["RAMLICO_CACHE_DIR"] = old


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped (with the reason) where there is none."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marker gpu); none is available here")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
