"""ramlico: optimal-transport vision-language recognition on PyTorch Lightning."""

__version__ = "0.1.0"
