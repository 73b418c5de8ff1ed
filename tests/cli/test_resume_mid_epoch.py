"""A run killed mid-epoch and resumed from last.ckpt ends exactly like an uninterrupted run.

Issue #4 (RAM): deterministic mode, tiny CLIP on generated data. Run A trains EPOCHS epochs; run B
is the same run with a mid-epoch last.ckpt every SAVE_EVERY steps and a crash (an exception, not
``should_stop``) in the first epoch; B is resumed from its last.ckpt, so the resumed run steps the
learning-rate schedule itself (RAM: timm's scheduler, restored from the checkpoint). The resumed
run must train exactly the batches A trained after that step (same images, same augmentations)
and end with the same weights and test metrics. Gradient noise from the global generator stands
in for model-side randomness (dropout), whose state the checkpoint carries. Parametrised by
experiment name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, shrink
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

from ramlico.callbacks import EMA
from ramlico.cli import train

EXPERIMENTS = ["clip_adapter_demo", "ram_demo", "lico_demo", "ram_demo+ema"]
# "+ema": the EMA callback (restarted every epoch, the reference's way: a mid-epoch resume must
# continue the saved average, not restart it); validation and test then use the average.
EMA_OVERRIDES = {"decay": 0.5, "reset_each_epoch": True}
EPOCHS = 2
BATCH_SIZE = 8  # 40 generated training images (shrink) -> 5 batches per epoch
SAVE_EVERY = 2  # mid-epoch last.ckpt every 2 optimizer steps (one per batch)
CRASH_AT = (0, 3)  # (epoch, batch_idx) of the crash; last.ckpt then holds batches 0 and 1


class Crash(RuntimeError):
    """The simulated kill."""


class CrashAt(Callback):
    """Raise in ``on_train_batch_end`` of batch ``batch`` of epoch ``epoch`` (a crash)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            raise Crash(f"simulated kill at epoch {self.epoch} batch {self.batch}")


class GradNoise(Callback):
    """Model-side randomness from the global generator (like dropout): noise on the gradients."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        for p in pl_module.parameters():
            if p.grad is not None:
                p.grad.add_(torch.randn_like(p.grad), alpha=1e-3)


class BatchLog(Callback):
    """Every trained batch: (epoch, batch_idx, sum of images, sum of targets) in float64."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        images, targets = batch[0], batch[1]
        self.batches.append(
            (trainer.current_epoch, batch_idx, images.double().sum().item(),
             targets.double().sum().item())
        )  # fmt: skip


def _cfg(tmp_path: Path, experiment: str, name: str, crash: bool = False, ckpt: Path | None = None):
    experiment, _, ema = experiment.partition("+")
    cfg = shrink(compose_cfg("train", tmp_path / name, [f"experiment={experiment}"]),
                 tmp_path / "gen")  # fmt: skip
    with open_dict(cfg):
        if ema:
            cfg.callbacks.ema.update(EMA_OVERRIDES)
        cfg.logger = None
        cfg.trainer.deterministic = True
        cfg.trainer.max_epochs = EPOCHS
        cfg.data.batch_size = BATCH_SIZE
        if experiment.startswith("lico"):  # single-label supervised data: 20 classes x 2 images
            cfg.data.generated = {"n_per_class": 2, "n_test_per_class": 1, "image_size": 64,
                                  "seed": 0}  # fmt: skip
        else:
            cfg.data.val_max_images = 8  # validation runs (must not perturb training), cheaply
        cfg.trainer.num_sanity_val_steps = 0
        cfg.callbacks.mid_epoch_checkpoint.every_n_train_steps = SAVE_EVERY
        cfg.callbacks.batch_log = {"_target_": f"{__name__}.BatchLog"}
        cfg.callbacks.grad_noise = {"_target_": f"{__name__}.GradNoise"}
        if crash:
            cfg.callbacks.crash = {"_target_": f"{__name__}.CrashAt", "epoch": CRASH_AT[0],
                                   "batch": CRASH_AT[1]}  # fmt: skip
            cfg.test = False
        if ckpt is not None:
            cfg.ckpt_path = str(ckpt)
    return cfg


def _batch_log(objects) -> list[tuple[int, int, float, float]]:
    return next(c for c in objects["trainer"].callbacks if isinstance(c, BatchLog)).batches


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_mid_epoch_resume_equals_uninterrupted_run(tmp_path, experiment):
    metrics_a, objects_a = train(_cfg(tmp_path, experiment, "a"))
    log_a = _batch_log(objects_a)
    per_epoch = len(log_a) // EPOCHS
    assert len(log_a) == EPOCHS * per_epoch and per_epoch > CRASH_AT[1] + 1

    with pytest.raises(Crash):
        train(_cfg(tmp_path, experiment, "b", crash=True))
    last = tmp_path / "b" / "out" / "checkpoints" / "last.ckpt"
    loops = torch.load(last, map_location="cpu", weights_only=True)["loops"]["fit_loop"]
    done = loops["epoch_loop.batch_progress"]["total"]["ready"]  # batches (not optimizer steps)
    crash_step = CRASH_AT[0] * per_epoch + CRASH_AT[1]  # steps finished before the crash
    assert done == crash_step // SAVE_EVERY * SAVE_EVERY  # the mid-epoch save before it
    assert done % per_epoch != 0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics_r, objects_r = train(_cfg(tmp_path, experiment, "r", ckpt=last))
    # the loader is resumable (ResumableDataLoader): Lightning's false warning does not appear
    assert not [w for w in caught if "not resumable" in str(w.message)]
    log_r = _batch_log(objects_r)
    # Exactly the remaining batches, with A's batch indices, images and augmentations.
    assert len(log_r) == len(log_a) - done
    assert log_r == log_a[done:]
    assert objects_r["trainer"].global_step == objects_a["trainer"].global_step

    weights_a = objects_a["model"].trainable_state_dict()
    weights_r = objects_r["model"].trainable_state_dict()
    assert weights_a.keys() == weights_r.keys()
    for key, value in weights_a.items():
        assert torch.equal(value, weights_r[key]), key
    ema_a, ema_r = (o["trainer"].callbacks for o in (objects_a, objects_r))
    states = [next(c for c in cbs if isinstance(c, EMA)).state_dict() for cbs in (ema_a, ema_r)]
    assert bool(states[0]) == experiment.endswith("+ema")
    if states[0]:
        assert states[0]["updates"] == states[1]["updates"] > 0
        for key, value in states[0]["average"].items():
            assert torch.equal(value, states[1]["average"][key]), key
    test_keys = [k for k in metrics_a if k.startswith("test/")]
    assert len(test_keys) >= 2
    for key in test_keys:
        assert metrics_r[key] == metrics_a[key], key
