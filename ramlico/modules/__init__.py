"""Reusable nn blocks shared by the methods (adapters, prompt learners) and the text-feature
cache."""

from ramlico.modules.adapter import ResidualAdapter
from ramlico.modules.text_cache import TextFeatureCache

__all__ = ["ResidualAdapter", "TextFeatureCache"]
