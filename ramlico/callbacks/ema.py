"""``EMA``: an exponential moving average of the trainable weights, as a Lightning callback.

The average covers the trainable parameters and the floating buffers (BatchNorm statistics) of the
modules that hold them (:class:`ramlico.modules.ema.EMAShadow`); frozen backbones are not copied.
It is updated after every optimiser step and, with ``evaluate=True``, validation and test run with
the averaged weights in place of the live ones. Which weights are where:

* checkpoints: ``state_dict`` = the **live** weights (resume continues training from them); the
  average is the callback's state (``checkpoint["callbacks"]["EMA"]["average"]``);
* validation: swapped in at ``on_validation_start`` and out at ``on_validation_end``. Callback hooks
  run before the LightningModule's, and ``ModelCheckpoint`` runs after every other callback, so
  the checkpoints it saves at the end of validation (``check_val_every_n_epoch > 1``,
  ``val_check_interval < 1``) hold the live weights for every validation cadence;
* ``trainer.test(ckpt_path=...)``: Lightning restores callback states only when fitting, so the
  average of *that* checkpoint is read from its file; without ``ckpt_path`` the in-memory average.

Lightning's own ``EMAWeightAveraging`` copies the whole module (a frozen ViT-B/16 too), stores the
average as the checkpoint's ``state_dict`` and leaves the averaged weights in the model after
fitting; this callback keeps the live weights authoritative everywhere.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from ramlico.modules.ema import EMAShadow
from ramlico.utils import get_logger

__all__ = ["EMA", "load_ema_average"]

log = get_logger(__name__)
STATE_KEY = "EMA"  # the callback's entry in checkpoint["callbacks"]


class EMA(L.Callback):
    """Exponential moving average of the trainable weights, evaluated in place of the live ones.

    Args:
        decay: EMA decay in ``[0, 1)`` (RAM's reference: 0.9997); ``None`` = off (the callback
            does nothing and saves no state).
        evaluate: validate / test / predict with the averaged weights (``False``: the live ones;
            the average is still kept and saved).
        reset_each_epoch: restart the average from the live weights at the start of every epoch
            (RAM's reference); ``False`` = one average over the whole run.

    Raises:
        ValueError: ``decay`` outside ``[0, 1)``.
    """

    def __init__(
        self, decay: float | None = 0.9997, evaluate: bool = True, reset_each_epoch: bool = False
    ) -> None:
        if decay is not None and not 0.0 <= decay < 1.0:
            raise ValueError(f"callbacks.ema.decay must be in [0, 1) or null (off), got {decay}")
        self.decay = decay
        self.evaluate = bool(evaluate)
        self.reset_each_epoch = bool(reset_each_epoch)
        self.shadow: EMAShadow | None = None
        self.updates = 0  # optimiser steps averaged since the last (re)start
        self._last_step = 0  # trainer.global_step at the last update (accumulation-safe)
        self._pending: dict[str, Any] | None = None  # state loaded before the shadow exists

    @property
    def enabled(self) -> bool:
        return self.decay is not None

    @property
    def state_key(self) -> str:
        return STATE_KEY

    # ----------------------------------------------------------------- training
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.decay is None:  # off (not self.enabled)
            return
        self.shadow = EMAShadow(pl_module, self.decay)  # on the module's device, = live weights
        if self._pending is not None:  # resumed: continue the saved average
            self._apply(self._pending)
            self._pending = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # (Lightning skips this hook when it resumes mid-epoch: the saved average continues)
        if self.shadow is not None and self.reset_each_epoch:
            self.shadow.reset(pl_module)
            self.updates = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        # global_step counts optimiser steps: with gradient accumulation not every batch steps
        if self.shadow is not None and trainer.global_step > self._last_step:
            self.shadow.update(pl_module)
            self.updates += 1
            self._last_step = trainer.global_step

    # ----------------------------------------------------------------- evaluation
    def _swap_in(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and self.evaluate):
            return
        if trainer.state.fn != "fit" and trainer.ckpt_path:
            self._load_from_file(trainer, pl_module, str(trainer.ckpt_path))
        if self.shadow is None:
            log.warning(
                "EMA: no average for %s (no fit in this process and no checkpoint with one); "
                "evaluating the live weights",
                trainer.state.fn,
            )
            return
        self.shadow.swap_in(pl_module)

    def _swap_out(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.shadow is not None:
            self.shadow.swap_out(pl_module)

    def _load_from_file(self, trainer: L.Trainer, pl_module: L.LightningModule, path: str) -> None:
        """The average saved in checkpoint ``path`` (the one ``trainer.test`` just loaded)."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = (ckpt.get("callbacks") or {}).get(self.state_key)
        if not state:
            log.warning("EMA: %s holds no average; evaluating its live weights", path)
            self.shadow = None
            return
        self.shadow = EMAShadow(pl_module, self.decay or state["decay"])
        self._apply(state)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(trainer, pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(trainer, pl_module)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(trainer, pl_module)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(trainer, pl_module)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._swap_out(trainer, pl_module)  # never leave the average in the live weights

    # ----------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict[str, Any]:
        if self.shadow is None:
            return dict(self._pending or {})
        return {
            "average": {n: t.detach().cpu().clone() for n, t in self.shadow.average.items()},
            "decay": self.shadow.decay,
            "evaluate": self.evaluate,
            "updates": self.updates,
            "last_step": self._last_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self.shadow is None:  # restored before on_fit_start: applied there
            self._pending = dict(state_dict)
        else:
            self._apply(state_dict)

    def _apply(self, state: dict[str, Any]) -> None:
        assert self.shadow is not None
        self.shadow.load(state["average"])
        self.updates = int(state.get("updates", 0))
        self._last_step = int(state.get("last_step", 0))


def load_ema_average(
    module: torch.nn.Module, checkpoint: dict[str, Any], use: bool | None = None
) -> bool:
    """Put the EMA average of ``checkpoint`` into ``module`` (evaluation from a checkpoint).

    Args:
        module: the model, already holding the checkpoint's live weights.
        checkpoint: the loaded checkpoint dict.
        use: ``True`` the average, ``False`` the live weights, ``None`` as the run was configured
            (the callback's ``evaluate`` saved with it; live weights without an EMA).

    Returns:
        True when the average was loaded.

    Raises:
        ValueError: ``use=True`` and the checkpoint holds no average.
    """
    state = (checkpoint.get("callbacks") or {}).get(STATE_KEY)
    if use is None:
        use = bool(state and state.get("evaluate", True))
    if not use:
        return False
    if not state:
        raise ValueError(
            "ema=true but the checkpoint holds no EMA average (it was trained without the EMA "
            "callback); evaluate with ema=false or null"
        )
    shadow = EMAShadow(module, state["decay"])
    shadow.load(state["average"])
    shadow.swap_in(module)  # for good: the module now holds the average
    return True
