"""Lightning callbacks of ramlico: calibration, evaluation outputs, prediction outputs."""

from ramlico.callbacks.calibration import CalibrationFitter
from ramlico.callbacks.evaluation import EvaluationWriter
from ramlico.callbacks.prediction import PredictionWriter

__all__ = ["CalibrationFitter", "EvaluationWriter", "PredictionWriter"]
