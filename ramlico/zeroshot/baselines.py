"""Text sides of LaZSL's baselines: WaffleCLIP random descriptors and CuPL sentence files.

Both reuse the scoring functions of :mod:`ramlico.zeroshot.lazsl` (docs/zero_shot.md, "Baselines"):

* **WaffleCLIP** (Roth et al., ICCV 2023): ``count`` pairs of random descriptors shared by all
  classes, one random-word and one random-character descriptor per pair; sentences
  ``"A photo of a " + c + ", " + modify(d) + "."``; score = mean cosine over the ``2 count``
  sentences (:func:`ramlico.zeroshot.dclip_scores`).
* **CuPL** (Pratt et al., ICCV 2023): a JSON file ``{class: [full sentence, ...]}``; classifier
  ``t_k = normalize(mean_j normalize(E_T(s_kj)))`` (:func:`ramlico.zeroshot.mean_text_classifier`);
  score ``<p^g, t_k>`` (:func:`ramlico.zeroshot.clip_scores`).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ramlico.zeroshot.descriptors import descriptor_texts, load_descriptors, match_class_keys

__all__ = [
    "WAFFLE_PREFIX",
    "WAFFLE_SUFFIX",
    "cupl_sentences",
    "load_word_list",
    "waffle_descriptors",
    "waffle_texts",
    "word_list_from_descriptors",
]

WAFFLE_PREFIX = "A photo of a "
WAFFLE_SUFFIX = "."
_WORD = re.compile(r"[A-Za-z]+")


def word_list_from_descriptors(descriptors: Mapping[str, Sequence[str]]) -> list[str]:
    """Sorted unique lower-case alphabetic words (>= 3 letters) of a descriptor file.

    The default WaffleCLIP vocabulary when no word list is given (WaffleCLIP ships its own
    4,330-word English list; pass it with :func:`load_word_list` for parity).
    """
    words = {w.lower() for descs in descriptors.values() for s in descs for w in _WORD.findall(s)}
    return sorted(w for w in words if len(w) >= 3)


def load_word_list(path: str | Path) -> list[str]:
    """One word per line (blank lines ignored), order kept.

    Raises:
        FileNotFoundError: missing file; ValueError: no word in it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"waffle word list not found: {path}; give one word per line")
    words = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not words:
        raise ValueError(f"waffle word list {path} holds no words")
    return words


def _charset(descriptors: Mapping[str, Sequence[str]]) -> list[str]:
    chars = sorted({ch for descs in descriptors.values() for s in descs for ch in s if ch != " "})
    return chars or list("abcdefghijklmnopqrstuvwxyz")


def waffle_descriptors(
    class_names: Sequence[str],
    words: Sequence[str],
    charset: Iterable[str],
    *,
    count: int = 15,
    seed: int = 0,
) -> list[str]:
    """WaffleCLIP's ``2 * count`` random descriptors, shared by all classes.

    Per pair ``p = 0..count-1``, in this order:

    * random words: ``n_w = max(1, round(mean #words per class name))`` words drawn from
      ``words``, each cut to ``L_w = round(mean word length in the class names)`` characters,
      joined by spaces;
    * random characters: ``n_s = round(mean #spaces per class name) + 1`` groups joined by ``", "``;
      ``ceil(mean over classes of the longest word length)`` characters in all, rounded up to a
      multiple of ``n_s``, drawn from ``charset``.

    Args:
        class_names: the dataset's class names (statistics only).
        words: vocabulary of the random-word descriptors (non-empty).
        charset: characters of the random-character descriptors (non-empty).
        count: number of pairs (WaffleCLIP: 15).
        seed: ``random.Random`` seed; the same seed gives the same descriptors.

    Returns:
        ``2 * count`` descriptor strings, ``[word_0, chars_0, word_1, chars_1, ...]``.
    """
    chars = list(charset)
    if count < 1 or not words or not chars or not class_names:
        raise ValueError(
            f"waffle needs count >= 1 (got {count}), a non-empty word list ({len(words)} words), "
            f"charset ({len(chars)} chars) and class names ({len(class_names)})"
        )
    split = [c.replace("_", " ").split() for c in class_names]
    lengths = [len(w) for ws in split for w in ws] or [1]
    n_words = max(1, round(sum(len(ws) for ws in split) / len(split)))
    word_len = max(1, round(sum(lengths) / len(lengths)))
    n_groups = round(sum(c.replace("_", " ").count(" ") for c in class_names) / len(split)) + 1
    longest = math.ceil(sum(max((len(w) for w in ws), default=1) for ws in split) / len(split))
    total = math.ceil(longest / n_groups) * n_groups
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append(" ".join(rng.choice(words)[:word_len] for _ in range(n_words)))
        groups = ["".join(rng.choice(chars) for _ in range(total // n_groups))]
        groups += ["".join(rng.choice(chars) for _ in range(total // n_groups))
                   for _ in range(n_groups - 1)]  # fmt: skip
        out.append(", ".join(groups))
    return out


def waffle_texts(
    class_names: Sequence[str],
    descriptors: Mapping[str, Sequence[str]],
    *,
    count: int = 15,
    seed: int = 0,
    words: Sequence[str] | None = None,
) -> list[list[str]]:
    """WaffleCLIP sentences per class: ``"A photo of a {c}, {modify(d)}."`` for its random ``d``.

    Args:
        class_names: ``K`` class names (label order).
        descriptors: the LLM descriptor file (its characters form the random-character set; its
            words are the vocabulary unless ``words`` is given).
        count, seed: see :func:`waffle_descriptors`.
        words: vocabulary (e.g. WaffleCLIP's list via :func:`load_word_list`).

    Returns:
        ``K`` lists of ``2 * count`` sentences.
    """
    vocab = list(words) if words is not None else word_list_from_descriptors(descriptors)
    if not vocab:
        vocab = [c.replace("_", " ") for c in class_names]
    rand = waffle_descriptors(class_names, vocab, _charset(descriptors), count=count, seed=seed)
    return descriptor_texts(
        {c: rand for c in class_names}, class_names, prefix=WAFFLE_PREFIX, suffix=WAFFLE_SUFFIX
    )


def cupl_sentences(path: str | Path, class_names: Sequence[str]) -> list[list[str]]:
    """CuPL sentences per class, in ``class_names`` order, from a ``{class: [sentence]}`` JSON.

    Class names are matched to the file's keys by
    :func:`ramlico.zeroshot.descriptors.match_class_keys` (exact, normalised, aliases).

    Raises:
        ValueError: a class without sentences, or names that do not match the file's keys.
    """
    data = load_descriptors(path)
    keys = match_class_keys(class_names, data, source=f"CuPL file {str(path)!r}")
    empty = [
        c for c, k in zip(class_names, keys, strict=True) if not any(s.strip() for s in data[k])
    ]
    if empty:
        raise ValueError(f"CuPL file {str(path)!r}: classes {empty[:20]} have no sentence")
    return [[s for s in data[k] if s.strip()] for k in keys]
