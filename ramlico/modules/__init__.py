"""Reusable nn blocks shared by the methods (adapters, text classifiers, prompt learners)."""

from ramlico.modules.adapter import ResidualAdapter
from ramlico.modules.text_classifier import TextClassifierCache

__all__ = ["ResidualAdapter", "TextClassifierCache"]
