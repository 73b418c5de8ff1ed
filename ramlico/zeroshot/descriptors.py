"""LLM attribute descriptors for LaZSL / DCLIP: loading, sentence construction, padding.

The descriptor files use DCLIP's format (also CuPL's): one JSON object mapping each class name to a
list of short phrases, e.g. ``{"tench": ["a freshwater fish", "olive green or brown in color"]}``.
Sentences are built exactly as the LaZSL reference code does (spec/lazsl.md section 2.3)::

    text(c, s) = prefix + c + ", " + modify(s) + suffix

with ``c`` the class name (underscores turned into spaces) and ``modify`` the reference's raw
string-prefix rule (:func:`modify_descriptor`). Reference: Menon & Vondrick (2023); Chen et al.,
LaZSL (ICCV 2025), section 4.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

__all__ = [
    "descriptor_texts",
    "load_descriptors",
    "modify_descriptor",
    "pad_descriptor_embeddings",
]

Tensor = torch.Tensor
_WHICH_PREFIXES = ("has", "often", "typically", "may", "can")


def load_descriptors(path: str | Path) -> dict[str, list[str]]:
    """Load and validate a ``{class: [descriptor, ...]}`` JSON file (DCLIP / CuPL format).

    Key order is kept (it defines the class order). Empty lists become ``[""]``, as in the
    reference (spec/lazsl.md section 2.1).

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
) -> list[list[str]]:
    """Descriptor sentences for each class, in ``class_names`` order (spec/lazsl.md section 2.3).

    ``text(c, s) = prefix + c.replace("_", " ") + ", " + modify_descriptor(s) + suffix``. The
    reference uses ``prefix=""`` and ``suffix="."`` for ImageNet only (``""`` elsewhere, including
    ImageNet-V2/-R/-A/-S); the paper's template is ``prefix="A photo of a "``.

    Args:
        descriptors: ``{class: [descriptor, ...]}`` as returned by :func:`load_descriptors`.
        class_names: the dataset's label list; must match the descriptor keys one to one.
        prefix, suffix: text before the class name / after the descriptor.

    Returns:
        ``K`` lists of sentences (an empty descriptor list gives the single descriptor ``""``).

    Raises:
        ValueError: classes without descriptors, or descriptor keys not in ``class_names``
            (the dataset and descriptor file must agree; never sort independently).
    """
    missing = [c for c in class_names if c not in descriptors]
    extra = sorted(set(descriptors) - set(class_names))
    if missing or extra:
        raise ValueError(
            f"class names and descriptor keys must match one to one; missing descriptors for "
            f"{missing[:20]}{' ...' if len(missing) > 20 else ''} ({len(missing)} classes), "
            f"unused descriptor keys {extra[:20]} ({len(extra)}); pass the descriptor file of this "
            "dataset or fix the class-name list"
        )
    texts = []
    for c in class_names:
        name = c.replace("_", " ")
        descs = list(descriptors[c]) or [""]
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
