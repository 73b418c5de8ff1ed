"""Resumable on-disk cache of per-image features of a whole split, in chunks (OTFusion).

Layout: ``<root>/<key hash>/manifest.json`` (the key), ``chunk_000000.pt`` ... (one dict of
``(rows, ...)`` tensors per chunk of consecutive images) and named extras (``text.pt``).

* **Keyed:** the folder name is a hash of the key (model names and weights, transform, the
  dataset's file list, chunking), so a changed model or data config never reads a stale cache;
  the manifest is re-checked on open and a mismatch raises.
* **Resumable:** a chunk file is written to a temporary name and renamed when complete, so a
  killed extraction leaves only finished chunks; the next run skips them and continues.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["FeatureCache", "cache_key_digest"]

Tensor = torch.Tensor


def cache_key_digest(key: Mapping[str, Any]) -> str:
    """16 hex digits identifying ``key`` (JSON with sorted keys; non-JSON values via ``str``)."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class FeatureCache:
    """Chunked feature cache of one split under ``root``.

    Args:
        root: cache directory (created).
        key: what the features depend on (JSON-serialisable mapping).
        num_chunks: chunks that make up the complete split.

    Raises:
        ValueError: the folder's manifest holds a different key or chunk count (stale cache:
            delete the folder or change ``cache_dir``).
    """

    def __init__(self, root: str | Path, key: Mapping[str, Any], num_chunks: int) -> None:
        if num_chunks < 1:
            raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
        self.key = json.loads(json.dumps(dict(key), sort_keys=True, default=str))
        self.num_chunks = num_chunks
        self.folder = Path(root) / cache_key_digest(self.key)
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        record = {"key": self.key, "num_chunks": num_chunks}
        if manifest.is_file():
            stored = json.loads(manifest.read_text())
            if stored != record:
                raise ValueError(
                    f"stale feature cache {self.folder}: its manifest does not match this run "
                    f"(stored num_chunks {stored.get('num_chunks')}, now {num_chunks}); delete "
                    "the folder or set another cache_dir"
                )
        else:
            manifest.write_text(json.dumps(record, indent=1))

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.pt"

    def chunk_name(self, index: int) -> str:
        if not 0 <= index < self.num_chunks:
            raise IndexError(f"chunk {index} outside [0, {self.num_chunks})")
        return f"chunk_{index:06d}"

    def has(self, name: str) -> bool:
        """Whether entry ``name`` (a chunk name or an extra) is complete on disk."""
        return self._path(name).is_file()

    def has_chunk(self, index: int) -> bool:
        return self.has(self.chunk_name(index))

    def done_chunks(self) -> list[int]:
        """Indices of the complete chunks."""
        return [i for i in range(self.num_chunks) if self.has_chunk(i)]

    @property
    def complete(self) -> bool:
        return len(self.done_chunks()) == self.num_chunks

    def save(self, name: str, tensors: Mapping[str, Tensor]) -> None:
        """Atomically write a dict of tensors (CPU copies) as entry ``name``."""
        tmp = self.folder / f".{name}.pt.tmp"
        torch.save({k: v.detach().cpu() for k, v in tensors.items()}, tmp)
        os.replace(tmp, self._path(name))

    def save_chunk(self, index: int, tensors: Mapping[str, Tensor]) -> None:
        self.save(self.chunk_name(index), tensors)

    def load(self, name: str) -> dict[str, Tensor]:
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"feature cache entry {path} is missing")
        return torch.load(path, map_location="cpu", weights_only=True)

    def load_all(self) -> dict[str, Tensor]:
        """All chunks concatenated along rows, in chunk order.

        Raises:
            FileNotFoundError: a chunk is missing (extraction not finished).
        """
        missing = [i for i in range(self.num_chunks) if not self.has_chunk(i)]
        if missing:
            raise FileNotFoundError(
                f"feature cache {self.folder} lacks chunks {missing[:10]} ({len(missing)} of "
                f"{self.num_chunks}); run the extraction again to finish it"
            )
        parts = [self.load(self.chunk_name(i)) for i in range(self.num_chunks)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
