"""Evaluation metrics (metrics.md): multi-label P@k / R@k / F1@k and mAP, single-label top-k.

``ramlico.metrics.functional`` holds the plain functions on tensors; the classes here are their
streaming, DDP-correct torchmetrics counterparts. All values are in percent.
"""

from ramlico.metrics import functional
from ramlico.metrics.functional import (
    MetricWarning,
    average_precision_per_label,
    mean_average_precision,
    per_class_precision_recall_f1,
    topk_accuracy,
    topk_precision_recall_f1,
)
from ramlico.metrics.multilabel import (
    MeanAveragePrecision,
    MultiLabelMetrics,
    MultiLabelTopK,
    TopKAccuracy,
)
from ramlico.metrics.saliency import auc_trapezoid, insertion_deletion

__all__ = [
    "MeanAveragePrecision",
    "MetricWarning",
    "MultiLabelMetrics",
    "MultiLabelTopK",
    "TopKAccuracy",
    "auc_trapezoid",
    "average_precision_per_label",
    "functional",
    "insertion_deletion",
    "mean_average_precision",
    "per_class_precision_recall_f1",
    "topk_accuracy",
    "topk_precision_recall_f1",
]
