"""The EMA callback through the real CLI: live weights in checkpoints, the average where evaluated.

Each run trains ram_demo (tiny CLIP, generated data, 5 batches per epoch) with decay 0.5 and checks,
for a validation cadence that makes ModelCheckpoint save at the end of validation:

* every checkpoint written holds the live weights of that moment, and the callback state holds the
  exponential average of the live weights after each optimiser step (recomputed here);
* validation ran with the average;
* the after-fit ``trainer.test(ckpt_path=best)`` ran with the average saved in *that* checkpoint,
  and ``evaluate.py`` on the checkpoint reproduces its metrics with ``ema=null`` / ``true``, and
  evaluates the live weights with ``ema=false``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.callbacks import EMA  # noqa: E402
from ramlico.cli import evaluate, train  # noqa: E402
from ramlico.cli.checkpoint import load_checkpoint  # noqa: E402
from ramlico.modules.ema import ema_tracked_names  # noqa: E402

DECAY = 0.5


def _tracked(module) -> dict[str, torch.Tensor]:
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return {n: tensors[n].detach().clone() for n in ema_tracked_names(module)}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def _close(a: dict, b: dict) -> bool:
    """Equal up to rounding: the callback lerps, the probe computes d a + (1 - d) v."""
    return a.keys() == b.keys() and all(
        torch.allclose(a[k].cpu(), b[k].cpu(), rtol=1e-6, atol=1e-7) for k in a
    )


class Probe(Callback):
    """Recomputes the average from the live weights and records what each hook saw."""

    def __init__(self) -> None:
        self.live: dict | None = None
        self.average: dict | None = None
        self.saves: list[tuple[int, bool, bool]] = []  # (step, state == live, ema == average)
        self.validations: list[bool] = []  # weights == average during validation
        self.tests: list[dict] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self.live = _tracked(pl_module)
        self.average = {k: v.clone() for k, v in self.live.items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.live = _tracked(pl_module)
        for k, v in self.live.items():
            self.average[k] = DECAY * self.average[k] + (1 - DECAY) * v

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validations.append(_close(_tracked(pl_module), self.average))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        state = {k: checkpoint["state_dict"][k] for k in self.live}
        ema = checkpoint["callbacks"]["EMA"]["average"]
        saved_live, saved_average = _equal(state, self.live), _close(ema, self.average)
        self.saves.append((trainer.global_step, saved_live, saved_average))

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self.tests.append(_tracked(pl_module))


def _run(tmp_path: Path, cadence: dict):
    cfg = shrink(compose_cfg("train", tmp_path, []), tmp_path / "gen")  # ram_demo
    with open_dict(cfg):
        cfg.logger = None
        cfg.data.batch_size = 8  # 40 images: 5 optimiser steps per epoch
        cfg.data.val_max_images = 8
        cfg.trainer.num_sanity_val_steps = 0
        cfg.trainer.max_epochs = 2
        cfg.trainer.update(cadence)
        cfg.callbacks.ema.decay = DECAY
        cfg.callbacks.model_checkpoint.monitor = None  # a save at every validation, not the best
        cfg.callbacks.probe = {"_target_": f"{__name__}.Probe"}
    metrics, objects = train(cfg)
    probe = next(c for c in objects["trainer"].callbacks if isinstance(c, Probe))
    ema = next(c for c in objects["trainer"].callbacks if isinstance(c, EMA))
    return cfg, metrics, objects, probe, ema


@pytest.mark.parametrize(
    ("cadence", "n_val", "save_steps"),
    [
        ({"check_val_every_n_epoch": 2}, 1, [10]),  # saved at validation end only (epoch 2)
        # every 2 of the 5 batches (mid-epoch saves), and last.ckpt at the end of epoch 2
        ({"val_check_interval": 0.5}, 4, [2, 4, 7, 9, 10]),
    ],
)
def test_checkpoints_hold_the_live_weights_and_the_average_beside_them(
    tmp_path, cadence, n_val, save_steps
):
    cfg, metrics, objects, probe, ema = _run(tmp_path, cadence)
    model = objects["model"]
    assert probe.validations == [True] * n_val
    assert all(s[1:] == (True, True) for s in probe.saves), probe.saves
    assert sorted({s[0] for s in probe.saves}) == save_steps  # (step of each saving validation)

    last = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert _close(last["callbacks"]["EMA"]["average"], probe.average)  # the final average
    assert all(torch.equal(last["state_dict"][k], probe.live[k].cpu()) for k in probe.live)
    assert not any(torch.equal(probe.average[k], probe.live[k]) for k in list(probe.live)[:3])
    assert last["callbacks"]["EMA"]["updates"] == objects["trainer"].global_step == 10

    # the after-fit test evaluated the average saved in the tested checkpoint, then put its live
    # weights back
    best = load_checkpoint(objects["trainer"].checkpoint_callback.best_model_path)
    saved = best["callbacks"]["EMA"]["average"]
    assert len(probe.tests) == 1 and _equal(probe.tests[0], saved)
    assert not ema.shadow.active
    live = _tracked(model)
    assert all(torch.equal(best["state_dict"][k], live[k]) for k in live)
    best = objects["trainer"].checkpoint_callback.best_model_path

    # evaluate.py on that checkpoint: ema=null (as trained) = ema=true = the after-fit test
    test_keys = sorted(k for k in metrics if k.startswith("test/"))
    for use in ("null", "true", "false"):
        overrides = [f"ckpt_path={best}", f"ema={use}"]
        ecfg = shrink(compose_cfg("eval", tmp_path / f"e_{use}", overrides), tmp_path / "gen")
        with open_dict(ecfg):
            ecfg.logger = None
            ecfg.data.image_size = 64
        emetrics, eobjects = evaluate(ecfg)
        weights = _tracked(eobjects["model"])
        if use == "false":
            assert _equal(weights, {k: load_checkpoint(best)["state_dict"][k] for k in weights})
        else:
            assert _equal(weights, saved)
            assert [emetrics[k] for k in test_keys] == [metrics[k] for k in test_keys]


def test_off_by_default_and_no_state_saved(tmp_path):
    cfg = shrink(compose_cfg("train", tmp_path, []), tmp_path / "gen")
    assert cfg.callbacks.ema.decay is None
    ema = EMA(decay=None)
    assert ema.state_dict() == {} and ema.shadow is None
    with pytest.raises(ValueError, match=r"callbacks.ema.decay must be in \[0, 1\)"):
        EMA(decay=1.5)
    with pytest.raises(ValueError, match="holds no EMA average"):
        from ramlico.callbacks import load_ema_average

        load_ema_average(torch.nn.Linear(1, 1), {"callbacks": {}}, use=True)
