"""Explanations: post-hoc saliency maps (pytorch-grad-cam) and their Insertion/Deletion scores."""

from ramlico.explain.evaluation import evaluate_saliency, save_saliency_png
from ramlico.explain.saliency import CAM_METHODS, SaliencyExplainer

__all__ = ["CAM_METHODS", "SaliencyExplainer", "evaluate_saliency", "save_saliency_png"]
