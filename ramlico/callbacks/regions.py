"""Region evidence of the test run, scored where the test data records its objects.

:class:`RegionEvidenceScorer` (in ``configs/callbacks/default.yaml`` and ``eval.yaml``) scores, at
the end of ``trainer.test``, each test split whose data has ground-truth geometry (the generated
toy-world sets; your JSON-lines files with ``objects``) with
:func:`ramlico.explain.region_evaluation.evaluate_regions`: the method's evidence next to zero-shot
CLIP's patch similarity and the uniform map. Data without geometry costs nothing. It logs
``regions/<split>/<source>/pointing`` and ``.../mass`` (percent), which train.py / evaluate.py
print as a second table and write to ``metrics.json``; ``eval.regions=false`` switches it off.

Under DDP each process scores its shard of the test loaders and the sums are reduced, so every
process logs the whole test set's values (equal to one process's).
"""

from __future__ import annotations

from typing import Any

import lightning as L

from ramlico.explain.region_evaluation import default_evidence, evaluate_regions
from ramlico.utils import get_logger

__all__ = ["RegionEvidenceScorer", "region_metrics"]

log = get_logger(__name__)


def _loaders(datamodule: Any) -> list[Any]:
    loaders = datamodule.test_dataloader()
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]


def region_metrics(model: Any, datamodule: Any, tolerance: float = 0.0) -> dict[str, float]:
    """``{"regions/<split>/<source>/<pointing|mass>": %}`` for every test split with geometry.

    ``model`` is a set-up ramlico method (its ``eval_splits`` and ``label_names``), on its device;
    ``datamodule`` is set up for testing.
    """
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        for split, loader in zip(model.eval_splits, _loaders(datamodule), strict=True):
            names = model.label_names[split]
            sources = default_evidence(model, split)
            scores = evaluate_regions(loader, names, sources, tolerance, device=model.device)
            for source, values in scores.items():
                for key, value in values.items():
                    out[f"regions/{split}/{source}/{key}"] = value
    finally:
        model.train(was_training)
    if out:
        log.info("region evidence scored against the data's objects (%d values)", len(out))
    return out


class RegionEvidenceScorer(L.Callback):
    """After testing: pointing game and evidence mass of the model's region evidence.

    Args:
        enabled: ``False`` = score nothing (``eval.regions=false``).
        tolerance: pixels added to every object's radius (the pointing game's tolerance).
    """

    def __init__(self, enabled: bool = True, tolerance: float = 0.0) -> None:
        self.enabled = bool(enabled)
        self.tolerance = float(tolerance)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)  # set by fit/test(datamodule=...)
        if not self.enabled or trainer.sanity_checking or datamodule is None:
            return
        metrics = region_metrics(pl_module, datamodule, self.tolerance)
        if metrics:  # equal on every process; sync_dist makes Lightning's epoch mean explicit
            pl_module.log_dict(metrics, sync_dist=True)
