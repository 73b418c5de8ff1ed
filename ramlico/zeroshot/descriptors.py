"""LLM attribute descriptors for LaZSL / DCLIP: loading, sentence construction, padding.

The descriptor files use DCLIP's format (also CuPL's): one JSON object mapping each class name to a
list of short phrases, e.g. ``{"tench": ["a freshwater fish", "olive green or brown in color"]}``.
Sentences are built exactly as the LaZSL reference code does (docs/zero_shot.md)::

    text(c, s) = prefix + c + ", " + modify(s) + suffix

with ``c`` the matched descriptor key (underscores turned into spaces; the reference builds its
class names from the keys) and ``modify`` the reference's raw string-prefix rule
(:func:`modify_descriptor`). Reference: Menon & Vondrick (2023); Chen et al., LaZSL (ICCV 2025),
section 4.1.

**Class names to keys** (:func:`match_class_keys`): the published files (DCLIP, CuPL, LaZSL) load as
they are. Each class name of the dataset is matched to a key, in this order: the identical key;
else the one key equal after :func:`normalize_class_name` (case-folded, runs of ``_``, ``-``,
``/`` and spaces read as one space: ``apartment_building/outdoor`` matches
``apartment_building-outdoor``, ``Black_footed_Albatross`` matches ``Black-footed Albatross``);
else an entry of the explicit :data:`CLASS_KEY_ALIASES` table. A class without a key is an error
that lists the unmatched class names and the unused keys. Keys no class uses are allowed (a
descriptor file of all 1000 ImageNet classes serves the 200 of ImageNet-R/-A).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from ramlico.utils import get_logger

__all__ = [
    "CLASS_KEY_ALIASES",
    "descriptor_texts",
    "load_descriptors",
    "match_class_keys",
    "modify_descriptor",
    "normalize_class_name",
    "pad_descriptor_embeddings",
]

log = get_logger(__name__)
Tensor = torch.Tensor
_WHICH_PREFIXES = ("has", "often", "typically", "may", "can")
_SEPARATORS = re.compile(r"[\s_/-]+")

#: Class name -> keys it may also be published under, tried in order after the exact and the
#: normalised match. Such a key may also serve another class: CuPL's ImageNet file was built from
#: a class list that names two pairs of classes alike, so it holds one entry for each pair.
CLASS_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    # ImageNet (ramlico / DCLIP / LaZSL names -> the CuPL release's keys)
    "eft": ("newt",),
    "maillot": ("tights",),
    "projectile": ("missile",),
    "sunglass": ("sunglasses",),
    # Places365 (category name -> the DCLIP / LaZSL key, which disambiguates it)
    "arcade": ("arcade (passageway)",),
    "lock_chamber": ("lock_chamber (canal)",),
    # CUB-200 (the corrected spelling -> the dataset's and the descriptor files' "Artic")
    "Arctic Tern": ("Artic Tern",),
}


def normalize_class_name(name: str) -> str:
    """Case-folded, runs of ``_``, ``-``, ``/`` and whitespace as one space, trimmed.

    Example:
        >>> normalize_class_name("Apartment_building/outdoor")
        'apartment building outdoor'
        >>> normalize_class_name("Black-footed  Albatross")
        'black footed albatross'
    """
    return _SEPARATORS.sub(" ", name.casefold()).strip()


def _list(names: Iterable[str], limit: int = 20) -> str:
    names = list(names)
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def match_class_keys(
    class_names: Sequence[str],
    keys: Iterable[str],
    *,
    aliases: Mapping[str, Sequence[str]] = CLASS_KEY_ALIASES,
    source: str = "descriptor file",
) -> list[str]:
    """The key of each class (module docstring: exact, then normalised, then alias).

    Exact and normalised matches are one-to-one (a key serves one class; a normalised form that
    fits several unused keys is no match). Alias matches may reuse a key.

    Args:
        class_names: the dataset's label list, in label order.
        keys: the file's keys.
        aliases: class name -> alternative keys (default :data:`CLASS_KEY_ALIASES`).
        source: what holds the keys, for the error message (e.g. the file path).

    Returns:
        ``len(class_names)`` keys, in label order.

    Raises:
        ValueError: classes without a key; the message lists them and the unused keys.
    """
    keys = list(keys)
    key_set = set(keys)
    found: dict[int, str] = {}
    used: set[str] = set()
    for i, name in enumerate(class_names):
        if name in key_set and name not in used:
            found[i] = name
            used.add(name)
    by_norm: dict[str, list[str]] = {}
    for key in keys:
        by_norm.setdefault(normalize_class_name(key), []).append(key)
    for i, name in enumerate(class_names):
        if i in found:
            continue
        free = [k for k in by_norm.get(normalize_class_name(name), []) if k not in used]
        if len(free) == 1:
            found[i] = free[0]
            used.add(free[0])
    for i, name in enumerate(class_names):
        alt = next((a for a in aliases.get(name, ()) if a in key_set), None)
        if i not in found and alt is not None:
            found[i] = alt
            used.add(alt)
    missing = [name for i, name in enumerate(class_names) if i not in found]
    if missing:
        unused = [k for k in keys if k not in used]
        raise ValueError(
            f"{source}: {len(missing)} of {len(class_names)} class names have no key: "
            f"{_list(missing)}; keys no class matched ({len(unused)}): {_list(unused)}. Names "
            "match exactly, then ignoring case and _ - / spaces, then through CLASS_KEY_ALIASES; "
            "pass this dataset's file, or fix the names with data.class_names_file"
        )
    extra = len(key_set - used)
    if extra:
        log.info(
            "%s: %d keys are not classes of this dataset (a subset is evaluated)", source, extra
        )
    return [found[i] for i in range(len(class_names))]


def load_descriptors(path: str | Path) -> dict[str, list[str]]:
    """Load and validate a ``{class: [descriptor, ...]}`` JSON file (DCLIP / CuPL format).

    Key order is kept (it defines the class order). Empty lists become ``[""]``, as in the
    reference (docs/zero_shot.md, "Descriptor sentences").

    Args:
        path: path to the JSON file.

    Returns:
        ``dict`` class name -> list of descriptor strings, in file order.

    Raises:
        ValueError: the file is not a JSON object of string lists.
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(
            f"descriptor file {str(path)!r} must hold a JSON object {{class: [descriptor, ...]}}, "
            f"got {type(data).__name__}"
        )
    out: dict[str, list[str]] = {}
    for name, descs in data.items():
        if not isinstance(descs, list) or not all(isinstance(s, str) for s in descs):
            raise ValueError(
                f"descriptor file {str(path)!r}: class {name!r} must map to a list of strings, "
                f"got {descs!r}"
            )
        out[name] = list(descs) if descs else [""]
    return out


def modify_descriptor(descriptor: str) -> str:
    """The reference's ``modify`` rule (raw string-prefix tests, in this order).

    ``"a..." -> "which is a..."`` (any text starting with the letter ``a``, the reference quirk);
    ``has/often/typically/may/can... -> "which ..."``; ``"used..." -> "which is used..."``;
    otherwise ``"which has ..."``.

    Example:
        >>> modify_descriptor("antennae")
        'which is antennae'
        >>> modify_descriptor("black feet")
        'which has black feet'
    """
    if descriptor.startswith("a"):
        return "which is " + descriptor
    if descriptor.startswith(_WHICH_PREFIXES):
        return "which " + descriptor
    if descriptor.startswith("used"):
        return "which is " + descriptor
    return "which has " + descriptor


def descriptor_texts(
    descriptors: Mapping[str, Sequence[str]],
    class_names: Sequence[str],
    *,
    prefix: str = "",
    suffix: str = "",
    source: str = "descriptor file",
) -> list[list[str]]:
    """Descriptor sentences for each class, in ``class_names`` order (docs/zero_shot.md).

    ``text(c, s) = prefix + key(c).replace("_", " ") + ", " + modify_descriptor(s) + suffix``
    with ``key(c)`` the class's key (:func:`match_class_keys`). The reference uses ``prefix=""``
    and ``suffix="."`` for ImageNet only (``""`` elsewhere, including ImageNet-V2/-R/-A/-S); the
    paper's template is ``prefix="A photo of a "``.

    Args:
        descriptors: ``{class: [descriptor, ...]}`` as returned by :func:`load_descriptors`.
        class_names: the dataset's label list, in label order (never sorted here).
        prefix, suffix: text before the class name / after the descriptor.
        source: what the descriptors come from, for errors.

    Returns:
        ``K`` lists of sentences (an empty descriptor list gives the single descriptor ``""``).

    Raises:
        ValueError: classes without a key (the message lists both sides).
    """
    texts = []
    for key in match_class_keys(class_names, descriptors, source=source):
        name = key.replace("_", " ")
        descs = list(descriptors[key]) or [""]
        texts.append([prefix + name + ", " + modify_descriptor(s) + suffix for s in descs])
    return texts


def pad_descriptor_embeddings(embeddings: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Pack per-class descriptor embeddings ``(M_k, D)`` into ``(K, M_max, D)`` plus a mask.

    Args:
        embeddings: ``K`` tensors of shape ``(M_k, D)``, ``M_k >= 1``, same ``D``/dtype/device.

    Returns:
        ``(desc_feats, desc_mask)``: ``(K, M_max, D)`` with zeros on padding and
        ``(K, M_max)`` bool, True on real descriptors.

    Raises:
        ValueError: empty input, a class with no descriptor, or mismatched shapes.
    """
    if len(embeddings) == 0:
        raise ValueError("embeddings must hold at least one class, got an empty sequence")
    dims = {e.shape[-1] for e in embeddings}
    bad = [k for k, e in enumerate(embeddings) if e.dim() != 2 or e.shape[0] == 0]
    if bad or len(dims) != 1:
        raise ValueError(
            f"each class needs a (M_k >= 1, D) tensor with a common D; bad classes {bad[:20]}, "
            f"dims seen {sorted(dims)}; empty descriptor lists should become [''] first"
        )
    m_max = max(e.shape[0] for e in embeddings)
    ref = embeddings[0]
    feats = ref.new_zeros(len(embeddings), m_max, ref.shape[-1])
    mask = torch.zeros(len(embeddings), m_max, dtype=torch.bool, device=ref.device)
    for k, e in enumerate(embeddings):
        feats[k, : e.shape[0]] = e
        mask[k, : e.shape[0]] = True
    return feats, mask
