"""ramlico: optimal-transport vision-language recognition on PyTorch Lightning."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_predictor"]


def load_predictor(*args: Any, **kwargs: Any) -> Any:
    """``ramlico.load_predictor(ckpt_or_experiment)``: see :func:`ramlico.predict.load_predictor`."""
    from ramlico.predict.predictor import load_predictor as _load

    return _load(*args, **kwargs)
