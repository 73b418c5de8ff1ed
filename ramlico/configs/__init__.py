"""The Hydra configs, shipped inside the package (``pkg://ramlico.configs``)."""
