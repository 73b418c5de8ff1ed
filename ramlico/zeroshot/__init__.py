"""Training-free zero-shot scoring on precomputed CLIP features (LaZSL, DCLIP/CLIP baselines)."""

from ramlico.zeroshot.descriptors import (
    descriptor_texts,
    load_descriptors,
    modify_descriptor,
    pad_descriptor_embeddings,
)
from ramlico.zeroshot.lazsl import (
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
from ramlico.zeroshot.otfusion import OTFusionResult, otfusion_predict

__all__ = [
    "LaZSLExplanation",
    "OTFusionResult",
    "clip_scores",
    "crop_heatmap",
    "dclip_scores",
    "descriptor_texts",
    "explain",
    "hybrid_similarity",
    "lazsl_scores",
    "load_descriptors",
    "mean_text_classifier",
    "modify_descriptor",
    "otfusion_predict",
    "pad_descriptor_embeddings",
    "sample_crops",
    "vision_selection_marginal",
]
