"""Lightning callbacks of ramlico (configured in ``configs/callbacks``): EMA, calibration,
<<<<<<< HEAD
evaluation outputs, region evidence, prediction outputs."""
=======
evaluation outputs, prediction outputs, zero-shot predictions and explanations."""
>>>>>>> origin/main

from ramlico.callbacks.calibration import CalibrationFitter
from ramlico.callbacks.ema import EMA, load_ema_average
from ramlico.callbacks.evaluation import EvaluationWriter
from ramlico.callbacks.prediction import PredictionWriter
<<<<<<< HEAD
from ramlico.callbacks.regions import RegionEvidenceScorer
=======
from ramlico.callbacks.zero_shot import ZeroShotWriter
>>>>>>> origin/main

__all__ = [
    "EMA",
    "CalibrationFitter",
    "EvaluationWriter",
    "PredictionWriter",
<<<<<<< HEAD
    "RegionEvidenceScorer",
=======
    "ZeroShotWriter",
>>>>>>> origin/main
    "load_ema_average",
]
