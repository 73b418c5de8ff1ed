"""Training losses: plain functions first, thin ``nn.Module`` shells where useful."""

from ramlico.losses.lico import (
    LICO_SOLVER,
    ManifoldMatchingLoss,
    manifold_matching_loss,
    ot_alignment_loss,
)
from ramlico.losses.mmc import mmc_loss

__all__ = [
    "LICO_SOLVER",
    "ManifoldMatchingLoss",
    "manifold_matching_loss",
    "mmc_loss",
    "ot_alignment_loss",
]
