"""The one batched Sinkhorn engine shared by every ramlico method (docs/sinkhorn.md)."""

from ramlico.ot.costs import cosine_cost, kcot_cost, kcot_log_kernel, squared_euclidean_cost
from ramlico.ot.distance import entropic_ot_value
from ramlico.ot.fast import clear_fast_path_cache, fast_path_cache_info
from ramlico.ot.options import SolverOptions
from ramlico.ot.result import OTResult, SinkhornWarning
from ramlico.ot.sinkhorn import sinkhorn

__all__ = [
    "OTResult",
    "SinkhornWarning",
    "SolverOptions",
    "clear_fast_path_cache",
    "cosine_cost",
    "entropic_ot_value",
    "fast_path_cache_info",
    "kcot_cost",
    "kcot_log_kernel",
    "sinkhorn",
    "squared_euclidean_cost",
]
