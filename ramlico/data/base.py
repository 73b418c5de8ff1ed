"""``RamlicoDataModule``: what every ramlico method may ask of its data (a typed interface).

The methods (:class:`ramlico.methods.base.RamlicoModule`) and the CLI read the datamodule only
through these members, never by probing attributes:

======================== =========================================================================
``task``                 ``"multilabel"`` (P/R/F1@k + mAP) or ``"multiclass"`` (top-k accuracy)
``eval_splits``          test splits, one loader each (``["zsl", "gzsl"]``, ``["seen"]``, ...)
``val_splits``           validation splits (``[]``: none)
``label_names(split)``   the label order of a split (``"train"`` = the trained labels)
``label_space``          seen / unseen labels (multi-label), else ``None``
``uses_model_transform`` adopts the model's own preprocessing via ``set_transform`` (zero-shot
                         classification data) or keeps its configured one
``normalization``        ``(mean, std)`` of its own transform (what a model receives otherwise)
``image_paths(split)``   image files of a test split by dataset index, or ``None``
``dataset_name``         the data set's name for reports (``"generated"``, ``"imagenet"``)
``check_data()``         the up-front data checks (``python -m ramlico.data.check``)
======================== =========================================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lightning import LightningDataModule

from ramlico.data.labels import LabelSpace

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

__all__ = ["RamlicoDataModule"]


class RamlicoDataModule(LightningDataModule, ABC):
    """Base class of ramlico's DataModules (see the module docstring for the members)."""

    task: ClassVar[str] = "multilabel"
    uses_model_transform: ClassVar[bool] = False

    if TYPE_CHECKING:  # save_hyperparameters() always stores an AttributeDict

        @property
        def hparams(self) -> AttributeDict: ...

    @property
    @abstractmethod
    def eval_splits(self) -> list[str]:
        """Names of the test splits, in the order of ``test_dataloader()``."""

    @property
    def val_splits(self) -> list[str]:
        """Names of the validation splits, in the order of ``val_dataloader()``; default none."""
        return []

    @abstractmethod
    def label_names(self, split: str) -> list[str]:
        """The label order of ``split``."""

    @property
    def label_space(self) -> LabelSpace | None:
        """Seen / unseen labels where the data has a zero-shot split, else ``None``."""
        return None

    @property
    @abstractmethod
    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        """``(mean, std)`` of the datamodule's own evaluation transform."""

    def set_transform(self, transform: Callable[..., Any]) -> None:
        """Use the model's own evaluation preprocessing (only if ``uses_model_transform``)."""
        raise TypeError(
            f"{type(self).__name__} keeps its configured preprocessing (uses_model_transform is "
            "False); set image_size / mean / std in the data config instead"
        )

    def image_paths(self, split: str) -> list[Path] | None:
        """The image files of test split ``split`` by dataset index; ``None`` if unknown."""
        return None

    @property
    @abstractmethod
    def dataset_name(self) -> str:
        """The data set's name for reports and prediction files."""

    def check_data(self, splits: Sequence[str] | None = None, progress: bool = True) -> list[Any]:
        """Run the data checks on ``splits`` (default all); one
        :class:`ramlico.data.check.SplitReport` per split checked."""
        return []
