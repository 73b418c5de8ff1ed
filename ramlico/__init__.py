"""ramlico: optimal-transport vision-language recognition on PyTorch Lightning."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_predictor"]


def load_predictor(*args: Any, **kwargs: Any) -> Any:
    """A tagging :class:`~ramlico.predict.predictor.Predictor` from a checkpoint or experiment.

    See :func:`ramlico.predict.predictor.load_predictor` (lazy import: ``import ramlico`` stays
    light).
    """
    from ramlico.predict.predictor import load_predictor as _load

    return _load(*args, **kwargs)
