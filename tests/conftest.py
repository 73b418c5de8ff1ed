"""Shared fixtures: the tiny random open_clip model (no weights are ever downloaded in tests)."""

from __future__ import annotations

import os
from pathlib import Path

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


# ---------------------------------------------------------------- parallel runs (pytest-xdist)
# `make test` runs the suite in one worker process per core (`-n auto --dist loadgroup`). Tests
# that share state run in one worker, as one group: a module's tests (module fixtures), each of
# these folders (a session fixture: the trained RAM runs of tests/toy and tests/predict), and the
# README checks, whose commands write the demo data under the checkout's data/. The longest
# groups go first so that no worker is left with one at the end.
TESTS = Path(__file__).resolve().parent
SHARED_FOLDERS = ("predict", "toy")
LONG_GROUPS = ("test_readme.py", "toy", "test_gpu_suite.py", "predict", "test_benchmarks.py")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per worker (and for the commands it starts): workers x threads = cores
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _group(item: pytest.Item) -> str:
    path = Path(str(item.path)).resolve()
    if not path.is_relative_to(TESTS):  # a test file given from elsewhere: its own group
        return path.as_posix()
    rel = path.relative_to(TESTS)
    return rel.parts[0] if rel.parts[0] in SHARED_FOLDERS else rel.as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups for pytest-xdist (above); tests marked ``gpu`` are skipped where there is no CUDA."""
    if config.pluginmanager.hasplugin("xdist"):
        rank = {g: i for i, g in enumerate(LONG_GROUPS)}
        groups = {item.nodeid: _group(item) for item in items}
        for item in items:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
        # stable: the long groups first, the rest in collection order
        items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marker gpu); none is available here")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
