"""Lightning callbacks of ramlico (configured in ``configs/callbacks``): EMA, calibration,
evaluation outputs, region evidence, prediction outputs, zero-shot predictions and explanations."""

from ramlico.callbacks.calibration import CalibrationFitter
from ramlico.callbacks.ema import EMA, load_ema_average
from ramlico.callbacks.evaluation import EvaluationWriter
from ramlico.callbacks.prediction import PredictionWriter
from ramlico.callbacks.regions import RegionEvidenceScorer
from ramlico.callbacks.zero_shot import ZeroShotWriter

__all__ = [
    "EMA",
    "CalibrationFitter",
    "EvaluationWriter",
    "PredictionWriter",
    "RegionEvidenceScorer",
    "ZeroShotWriter",
    "load_ema_average",
]
