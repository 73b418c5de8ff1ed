"""The built-in generated shapes (:mod:`ramlico.data.generated`), multi-label and single-label.

Both are written once under ``root`` and reused (no download); the demos and tests use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ramlico.data.generated import (
    GENERATED_CLASSES,
    generated_label_space,
    make_generated_classification,
    make_generated_dataset,
)
from ramlico.data.image_folder import read_image_folder
from ramlico.data.labelled_images import ImageFiles
from ramlico.data.labels import LabelSpace
from ramlico.data.records import Record, read_label_file
from ramlico.data.sources.base import MultiLabelSource, SingleLabelSource
from ramlico.data.sources.registry import register_source

__all__ = ["GeneratedClasses", "GeneratedScenes"]

SCENE_KEYS = ("n_train", "n_test", "image_size", "seed")
CLASS_KEYS = ("n_per_class", "n_test_per_class", "image_size", "seed", "test_seed")


def _options(generated: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    options = dict(generated or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keys {unknown} in generated; allowed: {list(allowed)}")
    return options


@register_source("generated")
class GeneratedScenes(MultiLabelSource):
    """1-3 coloured shapes per image; 15 seen / 5 unseen labels (``data=generated``).

    Args:
        root: the cache folder.
        generated: overrides of ``n_train`` (480), ``n_test`` (160), ``image_size`` (64) and
            ``seed`` (0) of :func:`ramlico.data.generated.make_generated_dataset`.
    """

    def __init__(self, root: str | Path, generated: Mapping[str, int] | None = None) -> None:
        super().__init__(root)
        self.options = _options(generated, SCENE_KEYS)

    def prepare(self) -> None:
        make_generated_dataset(self.root, **self.options)

    def label_space(self) -> LabelSpace:
        return generated_label_space()

    def records(self, split: str) -> list[Record]:
        self.require_split(split)
        info = make_generated_dataset(self.root, **self.options)
        return read_label_file(info[f"{split}_file"])


@register_source("generated")
class GeneratedClasses(SingleLabelSource):
    """One coloured shape per image, class ``"<colour> <shape>"`` (20 classes).

    ImageFolder trees ``root/train`` (seeded by ``seed``) and ``root/test`` (``test_seed``).

    Args:
        root: the cache folder.
        generated: ``n_per_class`` training images per class (40; 0 = no training split, an
            evaluation set), ``n_test_per_class`` (10), ``image_size`` (64), ``seed`` (0),
            ``test_seed`` (default ``seed + 1``).
    """

    def __init__(self, root: str | Path, generated: Mapping[str, int] | None = None) -> None:
        super().__init__(root)
        options = _options(generated, CLASS_KEYS)
        self.n_train = int(options.get("n_per_class", 40))
        self.n_test = int(options.get("n_test_per_class", 10))
        self.image_size = int(options.get("image_size", 64))
        self.seed = int(options.get("seed", 0))
        test_seed = options.get("test_seed")
        self.test_seed = self.seed + 1 if test_seed is None else int(test_seed)
        self.splits = ("train", "test") if self.n_train > 0 else ("test",)  # type: ignore[misc]

    def prepare(self) -> None:
        if self.n_train > 0:
            make_generated_classification(
                self.root / "train", self.n_train, self.image_size, self.seed
            )
        make_generated_classification(self.root / "test", self.n_test, self.image_size,
                                      self.test_seed)  # fmt: skip

    def class_names(self) -> list[str]:
        return list(GENERATED_CLASSES)

    def images(self, split: str) -> ImageFiles:
        self.require_split(split)
        self.prepare()
        samples, _ = read_image_folder(self.root / split)
        return ImageFiles(samples)
