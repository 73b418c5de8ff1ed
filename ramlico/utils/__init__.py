"""Small shared utilities: rank-zero logging."""

from ramlico.utils.logging import get_logger

__all__ = ["get_logger"]
