"""Lightning callbacks of ramlico (configured in ``configs/callbacks``)."""

from ramlico.callbacks.ema import EMA, load_ema_average

__all__ = ["EMA", "load_ema_average"]
