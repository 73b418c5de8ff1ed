"""Training-free zero-shot scoring on precomputed features: LaZSL and its baselines (CLIP, DCLIP,
WaffleCLIP, CuPL), OTFusion, explanation panels and the feature cache (prediction logs:
:mod:`ramlico.zeroshot.predictions`, also a CLI)."""

from ramlico.zeroshot.baselines import cupl_sentences, waffle_descriptors, waffle_texts
from ramlico.zeroshot.descriptors import (
    descriptor_texts,
    load_descriptors,
    modify_descriptor,
    pad_descriptor_embeddings,
)
from ramlico.zeroshot.feature_cache import FeatureCache
from ramlico.zeroshot.lazsl import (
    LAZSL_SOLVER,
    LaZSLExplanation,
    clip_scores,
    crop_heatmap,
    dclip_scores,
    explain,
    hybrid_similarity,
    lazsl_scores,
    mean_text_classifier,
    sample_crops,
    vision_selection_marginal,
)
from ramlico.zeroshot.otfusion import OTFUSION_SOLVER, OTFusionResult, otfusion_predict
from ramlico.zeroshot.panel import explanation_panel

__all__ = [
    "LAZSL_SOLVER",
    "OTFUSION_SOLVER",
    "FeatureCache",
    "LaZSLExplanation",
    "OTFusionResult",
    "clip_scores",
    "crop_heatmap",
    "cupl_sentences",
    "dclip_scores",
    "descriptor_texts",
    "explain",
    "explanation_panel",
    "hybrid_similarity",
    "lazsl_scores",
    "load_descriptors",
    "mean_text_classifier",
    "modify_descriptor",
    "otfusion_predict",
    "pad_descriptor_embeddings",
    "sample_crops",
    "vision_selection_marginal",
    "waffle_descriptors",
    "waffle_texts",
]
