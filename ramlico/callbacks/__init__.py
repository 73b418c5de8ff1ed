"""Lightning callbacks of ramlico (configured in ``configs/callbacks``): EMA, calibration,
evaluation outputs, prediction outputs."""

from ramlico.callbacks.calibration import CalibrationFitter
from ramlico.callbacks.ema import EMA, load_ema_average
from ramlico.callbacks.evaluation import EvaluationWriter
from ramlico.callbacks.prediction import PredictionWriter

__all__ = ["EMA", "CalibrationFitter", "EvaluationWriter", "PredictionWriter", "load_ema_average"]
