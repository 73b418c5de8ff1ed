"""Task functions behind train.py, evaluate.py and predict.py."""

from ramlico.cli.evaluate import evaluate
from ramlico.cli.predict import predict
from ramlico.cli.train import train

__all__ = ["evaluate", "predict", "train"]
