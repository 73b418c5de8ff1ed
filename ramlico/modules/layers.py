"""Block choices that fit any depth: ``"all"``, ``"last:3"``, or explicit (negative) indices.

RAM attaches its side network to chosen blocks of the frozen CLIP towers. Written as ``last:3``
instead of ``[9, 10, 11]`` the same config fits a 2-block test model, ViT-B (12 blocks) and
ViT-L (24 blocks), so switching the backbone is one override.
"""

from __future__ import annotations

from collections.abc import Sequence

from ramlico.utils import get_logger

__all__ = ["LayerSpec", "resolve_layers"]

log = get_logger(__name__)

#: a block choice: "all", "none", "last:K", "first:K", one index, or a list of indices
LayerSpec = str | int | Sequence[int]


def _bad(key: str, spec: object, n_blocks: int, why: str) -> ValueError:
    return ValueError(
        f"{key}={spec!r}: {why}. The tower has {n_blocks} blocks: use indices in "
        f"[{-n_blocks}, {n_blocks - 1}] (negative = from the end), 'all', or 'last:K' / 'first:K' "
        f"(e.g. {key}=last:3, which fits any depth)"
    )


def resolve_layers(spec: LayerSpec, n_blocks: int, key: str = "layers") -> tuple[int, ...]:
    """Sorted, distinct block indices in ``[0, n_blocks)`` chosen by ``spec``.

    ``"last:K"`` / ``"first:K"`` with ``K > n_blocks`` take every block (logged).

    Raises:
        ValueError: an index outside the tower or an unknown form (names ``key``, the valid range
            and the depth-independent forms).

    Example:
        >>> resolve_layers("last:3", 12), resolve_layers([-1, 0], 12), resolve_layers("all", 2)
        ((9, 10, 11), (0, 11), (0, 1))
    """
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return tuple(range(n_blocks))
        if text == "none":
            return ()
        where, _, count = text.partition(":")
        if where not in ("last", "first") or not count.strip().isdigit():
            raise _bad(key, spec, n_blocks, "unknown form")
        k = int(count)
        if k > n_blocks:
            log.info("%s=%s: the tower has only %d blocks, using all", key, spec, n_blocks)
        k = min(k, n_blocks)
        return tuple(range(n_blocks - k, n_blocks)) if where == "last" else tuple(range(k))
    values = [spec] if isinstance(spec, int) else list(spec)
    out = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _bad(key, spec, n_blocks, f"{v!r} is not a block index")
        if not -n_blocks <= v < n_blocks:
            raise _bad(key, spec, n_blocks, f"block {v} is outside the tower")
        out.add(v % n_blocks)
    return tuple(sorted(out))
