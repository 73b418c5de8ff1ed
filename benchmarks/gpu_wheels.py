"""Download the wheels a lent GPU machine lacks, so they can be carried there (it has no network).

The GPU machines come with PyTorch, timm, Lightning, torchmetrics and a long list of common
packages (:data:`ON_GPU_IMAGE`, read from the machine's package list) but not, for instance,
open_clip, POT or Hydra. This script walks ramlico's requirements (runtime and ``dev`` extra,
read from pyproject.toml) through the packages installed here, keeps the ones the image lacks,
and puts one wheel of each, at the version installed here, into ``--dest`` (default ``.whl/``,
git-ignored): a CPython 3.12 manylinux x86_64 wheel where PyPI has one, else a wheel built here
from the source distribution (pure-Python packages such as antlr4-python3-runtime).

    make gpu-wheels                          # = python benchmarks/gpu_wheels.py --dest .whl
    python benchmarks/gpu_wheels.py --list   # names and versions only, no download

``benchmarks/gpu_suite.sh`` installs whatever is in ``.whl/`` offline before the suite runs.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# The GPU image's Python packages (nvidia-h200 'cuda' image; the device notes list, 2026-11-17).
ON_GPU_IMAGE = frozenset(
    """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13
nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp
""".split()
)
NOT_NEEDED = frozenset({"ruff"})  # dev tools that neither the tests nor the suite import
# The GPU machine's interpreter: requirement markers are evaluated for it.
TARGET = {
    "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
    "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
    "implementation_name": "cpython", "platform_python_implementation": "CPython",
}  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")  # fmt: skip


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """ramlico's runtime requirements and its ``dev`` extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = project.get("dependencies", []) + project.get("optional-dependencies", {}).get(
        "dev", []
    )
    return [Requirement(s) for s in specs]


def _applies(req: Requirement, extra: str = "") -> bool:
    return req.marker is None or req.marker.evaluate({**TARGET, "extra": extra})


def missing_distributions(
    roots: list[Requirement], have: frozenset[str] = ON_GPU_IMAGE
) -> dict[str, str]:
    """``{distribution: version installed here}`` of the requirement closure ``have`` lacks.

    The walk follows the requirements of installed distributions; it stops at the ones in
    ``have`` (their own requirements are the image's business) and at :data:`NOT_NEEDED`.

    Raises:
        ValueError: a needed distribution is not installed here either (``pip install -e
            .[dev]`` first), so no version can be pinned.
    """
    have = frozenset(canonical(n) for n in have)
    todo = [r for r in roots if _applies(r)]
    found: dict[str, str] = {}
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in have or name in found or name in NOT_NEEDED:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError as exc:
            raise ValueError(
                f"{req.name} is needed on the GPU machine but not installed here, so its version "
                'cannot be pinned; run `pip install -e ".[dev]"` (or make install) first'
            ) from exc
        found[name] = dist.version
        todo += [r for r in map(Requirement, dist.requires or []) if _applies(r)]
    return dict(sorted(found.items()))


def download(name: str, version: str, dest: Path) -> None:
    """One wheel of ``name==version`` for CPython 3.12 manylinux x86_64 into ``dest``.

    Raises:
        RuntimeError: neither a matching binary wheel nor a pure-Python build exists.
    """
    spec = f"{name}=={version}"
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", *platforms,
           "-d", str(dest), spec]  # fmt: skip
    first = subprocess.run(cmd, capture_output=True, text=True)
    if first.returncode == 0:
        return
    print(f"{spec}: no binary wheel for the GPU machine; building one from its sdist", flush=True)
    before = set(dest.glob("*.whl"))
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", name,
             "-w", str(dest), spec]  # fmt: skip
    if subprocess.run(build).returncode != 0:
        raise RuntimeError(f"{spec}: no wheel could be had:\n{first.stderr[-2000:]}")
    for wheel in set(dest.glob("*.whl")) - before:
        if not wheel.name.endswith("-py3-none-any.whl"):  # compiled for this machine: unusable
            wheel.unlink()
            raise RuntimeError(
                f"{spec} has no CPython 3.12 manylinux x86_64 wheel on the index and is not pure "
                "Python; build it on a machine like the GPU's (Python 3.12, x86_64) and put the "
                "wheel into the --dest folder"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl")
    parser.add_argument("--list", action="store_true", help="print what is missing; no download")
    opts = parser.parse_args(argv)
    missing = missing_distributions(project_requirements())
    for name, version in missing.items():
        print(f"{name}=={version}")
    if opts.list:
        return 0
    opts.dest.mkdir(parents=True, exist_ok=True)
    for name, version in missing.items():
        stale = [p for p in opts.dest.glob("*.whl") if canonical(p.name.split("-")[0]) == name]
        if any(f"-{version}-" in p.name for p in stale):
            continue  # already there
        for p in stale:  # another version: two would stop the whole install there
            p.unlink()
        download(name, version, opts.dest)
    wheels = sorted(opts.dest.glob("*.whl"))
    size = sum(p.stat().st_size for p in wheels) / 2**20
    print(f"{len(wheels)} wheels in {opts.dest} ({size:.1f} MiB); carry that folder to the GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
