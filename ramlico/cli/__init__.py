"""Task functions behind train.py and evaluate.py."""

from ramlico.cli.evaluate import evaluate
from ramlico.cli.train import train

__all__ = ["evaluate", "train"]
