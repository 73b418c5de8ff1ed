"""ImageNet-1k class facts bundled with ramlico: WNIDs, readable names, the -R/-A 200-class subsets.

Files under ``ramlico/data/class_names/``:

* ``imagenet.txt``: 1000 lines ``<wnid>\\t<name>`` in the standard class-index order (WNIDs
  sorted), 1000 distinct names: exactly the keys of the DCLIP/LaZSL ImageNet descriptor file.
  They are OpenAI's cleaned CLIP class names (``open_clip``'s ``IMAGENET_CLASSNAMES``) except at
  four indices, where that list repeats a name or differs from the descriptor keys: 27 ``eft``
  (``newt``), 638 ``maillot`` (``tights``), 744 ``projectile`` (a second ``missile``), 836
  ``sunglass`` (a second ``sunglasses``). CuPL's ImageNet file uses the open_clip names; the
  key matching (``ramlico.zeroshot.descriptors.match_class_keys``) maps them.
* ``imagenet_r_wnids.txt`` / ``imagenet_a_wnids.txt``: the 200 WNIDs of ImageNet-R / ImageNet-A,
  sorted (their ImageNet indices ascend in the same order; timm's ``imagenet_{r,a}_synsets.txt``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = [
    "CLASS_NAMES_DIR",
    "imagenet_class_names",
    "imagenet_subset_indices",
    "imagenet_subset_wnids",
    "imagenet_wnids",
]

CLASS_NAMES_DIR = Path(__file__).resolve().parent / "class_names"
SUBSETS = ("imagenet_r", "imagenet_a")


@cache
def _table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    path = CLASS_NAMES_DIR / "imagenet.txt"
    rows = [ln.split("\t", 1) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    if len(rows) != 1000 or any(len(r) != 2 for r in rows):
        raise ValueError(f"{path} must hold 1000 '<wnid>\\t<name>' lines; reinstall ramlico")
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k WNIDs in class-index order (``n01440764`` = 0, tench)."""
    return list(_table()[0])


def imagenet_class_names() -> list[str]:
    """The 1000 readable CLIP-style class names in class-index order."""
    return list(_table()[1])


def imagenet_subset_wnids(subset: str) -> list[str]:
    """The 200 sorted WNIDs of ``"imagenet_r"`` or ``"imagenet_a"``."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    path = CLASS_NAMES_DIR / f"{subset}_wnids.txt"
    wnids = path.read_text(encoding="utf-8").split()
    if len(wnids) != 200:
        raise ValueError(f"{path} must list 200 WNIDs, got {len(wnids)}; reinstall ramlico")
    return wnids


def imagenet_subset_indices(subset: str) -> list[int]:
    """ImageNet class indices of a 200-class subset, ascending (docs/zero_shot.md, "Class names").

    Example:
        >>> imagenet_subset_indices("imagenet_r")[:3]
        [1, 2, 4]
    """
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    return [index[w] for w in imagenet_subset_wnids(subset)]
