"""The Dockerfile cannot be built here (no Docker engine); check what can be checked statically."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_every_copy_source_exists():
    copies = [rest for word, rest in _instructions() if word == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    sources = []
    for rest in copies:
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        sources.extend(parts[:-1])  # the last item is the destination
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert missing == []
    assert {"pyproject.toml", "ramlico", "train.py", "evaluate.py"} <= set(sources)
    assert (ROOT / "ramlico" / "configs" / "train.yaml").is_file()  # configs ship in the package


def test_base_image_is_pinned_cuda_pytorch_and_entrypoint_is_train():
    instr = _instructions()
    base = next(rest for word, rest in instr if word == "FROM")
    assert re.fullmatch(r"pytorch/pytorch:\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime", base)
    entry = next(rest for word, rest in instr if word == "ENTRYPOINT")
    assert entry == '["python", "train.py"]'


def test_dockerignore_keeps_data_and_logs_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"data", "logs", ".git"} <= set(ignored)
