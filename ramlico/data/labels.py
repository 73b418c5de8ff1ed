"""Label sets of the zero-shot protocols: seen / unseen / GZSL label order and multi-hot targets.

Label order: seen labels sorted alphabetically, then unseen labels sorted
alphabetically; the GZSL label vector is ``seen + unseen``. Order only matters for tie-breaking in
top-k metrics.

Constants:
    COCO_SEEN (48), COCO_UNSEEN (17): the MS-COCO 2014 split of Bansal et al. 2018 (docs/data.md).
    COCO_EXCLUDED (15): the multi-word COCO categories left out of the 65-class protocol.
    NUS_UNSEEN (81): the human-annotated NUS-WIDE concepts (docs/data.md). The 925 NUS-WIDE seen
        labels come from the dataset's own ``TagList1k.txt`` (``ramlico.data.nus_wide``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

COCO_UNSEEN: tuple[str, ...] = tuple(
    """
    airplane bus cake cat couch cow cup dog elephant keyboard knife scissors sink skateboard
    snowboard tie umbrella
    """.split()
)  # 17

COCO_SEEN: tuple[str, ...] = tuple(
    """
    apple backpack banana bear bed bench bicycle bird boat book bottle bowl broccoli car carrot
    chair clock donut fork frisbee giraffe handbag horse kite laptop microwave motorcycle mouse
    orange oven person pizza refrigerator remote sandwich sheep skis spoon suitcase surfboard
    toaster toilet toothbrush train truck tv vase zebra
    """.split()
)  # 48

COCO_EXCLUDED: tuple[str, ...] = tuple(
    name.strip()
    for name in (
        "traffic light, fire hydrant, stop sign, parking meter, sports ball, baseball bat, "
        "baseball glove, tennis racket, wine glass, hot dog, potted plant, dining table, "
        "cell phone, teddy bear, hair drier"
    ).split(",")
)  # 15 multi-word categories, excluded by protocol

NUS_UNSEEN: tuple[str, ...] = tuple(
    """
    airport animal beach bear birds boats book bridge buildings cars castle cat cityscape clouds
    computer coral cow dancing dog earthquake elk fire fish flags flowers food fox frost garden
    glacier grass harbor horses house lake leaf map military moon mountain nighttime ocean
    person plane plants police protest railroad rainbow reflection road rocks running sand sign
    sky snow soccer sports statue street sun sunset surf swimmers tattoo temple tiger tower town
    toy train tree valley vehicle water waterfall wedding whales window zebra
    """.split()
)  # 81 human-annotated concepts

SPLIT_NAMES: dict[str, str] = {
    "train": "seen",
    "seen": "seen",
    "zsl": "unseen",
    "unseen": "unseen",
    "gzsl": "gzsl",
}


def _check_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    """Validate a list of label names: strings, non-empty, no duplicates. Returns them sorted."""
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ValueError(f"{what} labels must be non-empty strings, got {bad[:20]!r}")
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise ValueError(f"{what} labels contain duplicates {dupes[:20]}; list each label once")
    return tuple(sorted(names))


class LabelSpace:
    """Seen and unseen label names of a zero-shot multi-label protocol, in the canonical order.

    Args:
        seen: training labels (any order; stored sorted). May be empty only if unseen is not.
        unseen: labels never supervised in training (any order; stored sorted).

    Raises:
        ValueError: a label is in both lists, is duplicated, or is not a non-empty string.

    Example:
        >>> space = LabelSpace(seen=["dog", "cat"], unseen=["zebra", "bus"])
        >>> space.gzsl
        ('cat', 'dog', 'bus', 'zebra')
        >>> space.for_split("zsl")
        ('bus', 'zebra')
    """

    def __init__(self, seen: Sequence[str], unseen: Sequence[str]) -> None:
        if isinstance(seen, str) or isinstance(unseen, str):
            raise TypeError("seen and unseen must be sequences of label names, not a single string")
        self._seen = _check_names(list(seen), "seen")
        self._unseen = _check_names(list(unseen), "unseen")
        overlap = sorted(set(self._seen) & set(self._unseen))
        if overlap:
            raise ValueError(
                f"labels {overlap[:20]} are both seen and unseen ({len(overlap)} in total); "
                "a label must be in exactly one of the two lists"
            )
        if not self._seen and not self._unseen:
            raise ValueError("LabelSpace needs at least one seen or unseen label, got none")

    @property
    def seen(self) -> tuple[str, ...]:
        """Seen labels, sorted (training targets, C = len(seen))."""
        return self._seen

    @property
    def unseen(self) -> tuple[str, ...]:
        """Unseen labels, sorted (ZSL targets)."""
        return self._unseen

    @property
    def gzsl(self) -> tuple[str, ...]:
        """seen + unseen, in that order (GZSL targets)."""
        return self._seen + self._unseen

    def for_split(self, name: str) -> tuple[str, ...]:
        """Label names ranked in split ``name``.

        train/seen -> seen, zsl/unseen -> unseen, gzsl -> seen + unseen.
        """
        kind = SPLIT_NAMES.get(name)
        if kind is None:
            raise ValueError(f"unknown split name {name!r}; allowed: {sorted(SPLIT_NAMES)}")
        return {"seen": self.seen, "unseen": self.unseen, "gzsl": self.gzsl}[kind]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSpace):
            return NotImplemented
        return self.seen == other.seen and self.unseen == other.unseen

    def __hash__(self) -> int:
        return hash((self.seen, self.unseen))

    def __repr__(self) -> str:
        return f"LabelSpace(seen={len(self.seen)} labels, unseen={len(self.unseen)} labels)"


def multi_hot(labels: Iterable[str], names: Sequence[str]) -> torch.Tensor:
    """Multi-hot target of ``labels`` over the label order ``names``.

    Duplicates collapse to a single 1. Labels not in ``names`` raise (filter them first if the
    protocol drops them).

    Args:
        labels: label names of one image.
        names: the label order, C names.

    Returns:
        (C,) float32 tensor with 1.0 at the positions of ``labels``.

    Raises:
        ValueError: a label is not in ``names``.

    Example:
        >>> multi_hot(["b", "b", "c"], ["a", "b", "c"])
        tensor([0., 1., 1.])
    """
    index = {name: i for i, name in enumerate(names)}
    target = torch.zeros(len(names), dtype=torch.float32)
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise ValueError(
            f"labels {unknown[:20]} are not in the label list of {len(names)} names; "
            "add them to the list or drop them before calling multi_hot"
        )
    for label in labels:
        target[index[label]] = 1.0
    return target
