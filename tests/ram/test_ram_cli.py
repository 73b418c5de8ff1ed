"""RAM end to end with the CLI functions: lean checkpoint, evaluate from it, fine-tune init."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from helpers import compose_cfg, shrink  # noqa: E402

from ramlico.cli import evaluate, train  # noqa: E402
from ramlico.cli.checkpoint import (  # noqa: E402
    CheckpointMismatch,
    load_checkpoint,
    load_trainable_weights,
)
from ramlico.utils.schedule import warmup_cosine_lr  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ram")
    cfg = shrink(compose_cfg("train", tmp, []), tmp / "gen")  # no experiment = ram_demo
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
        cfg.logger = None
    metrics, objects = train(cfg)
    return tmp, cfg, metrics, objects


def test_no_argument_default_is_ram_demo(trained):
    _, cfg, metrics, objects = trained
    assert cfg.model._target_ == "ramlico.methods.RAM"
    assert type(objects["model"]).__name__ == "RAM"
    assert {"test/zsl/F1@3", "test/gzsl/mAP"} <= set(metrics)


def test_checkpoint_holds_only_the_side_network_prompts_and_temperatures(trained):
    _, cfg, _, objects = trained
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    keys = set(ckpt["state_dict"])
    assert keys and all(k.startswith(("ladder.", "text_prompts.", "tau_")) for k in keys)
    model = objects["model"]
    n_saved = sum(v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k
                  and "num_batches" not in k)  # fmt: skip
    assert n_saved == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert ckpt["ramlico"]["config"]["model"]["_target_"] == "ramlico.methods.RAM"


def test_evaluate_rebuilds_the_frozen_parts_from_the_config(trained):
    tmp, cfg, metrics, objects = trained
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    overrides = [f"ckpt_path={ckpt}", "data.image_size=224"]
    ecfg = shrink(compose_cfg("eval", tmp / "e", overrides), tmp / "gen")
    with open_dict(ecfg):
        ecfg.logger = None
    # the eval defaults (224 px) do not fit the tiny 64 px tower: the checkpoint's size is used,
    # and asking for another one explicitly names both values
    with pytest.raises(
        CheckpointMismatch, match=r"data.image_size=224 differs from the checkpoint's 64"
    ):
        evaluate(ecfg, overrides=overrides)
    emetrics, objects = evaluate(ecfg, overrides=overrides[:1])
    assert type(objects["model"]).__name__ == "RAM"
    for key in ("test/zsl/F1@3", "test/zsl/mAP", "test/gzsl/mAP", "test/gzsl/P@5"):
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4)


def test_init_ckpt_copies_the_trainable_tensors(trained, tmp_path):
    _, cfg, _, objects = trained
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    from hydra.utils import instantiate

    fresh = instantiate(cfg.model, _convert_="all")
    assert load_trainable_weights(fresh, ckpt) == []
    saved = load_checkpoint(ckpt)["state_dict"]
    for k, v in saved.items():
        assert torch.equal(fresh.state_dict()[k], v)
    with open_dict(cfg):
        cfg.model.text_prompt_len = 2
    other = instantiate(cfg.model, _convert_="all")
    with pytest.raises(ValueError, match="shape mismatch text_prompts.prompts.1"):
        load_trainable_weights(other, ckpt)


class _LrLog(Callback):
    """Each group's lr at every epoch start, and which groups' tensors moved in the epoch."""

    def __init__(self) -> None:
        self.lrs: list[dict[str, float]] = []
        self.moved: list[dict[str, bool]] = []

    def _snapshot(self, pl_module) -> dict[str, list[torch.Tensor]]:
        return {k: [p.detach().clone() for p in ps] for k, ps in pl_module.param_groups().items()}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        opt = trainer.optimizers[0]
        self.lrs.append({g["name"]: g["lr"] for g in opt.param_groups})
        self._start = self._snapshot(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        now = self._snapshot(pl_module)
        self.moved.append(
            {k: any(not torch.equal(a, b) for a, b in zip(v, now[k], strict=True))
             for k, v in self._start.items()}
        )  # fmt: skip


def test_lightning_steps_the_schedule_per_epoch_and_every_inner_optimiser(tmp_path):
    """The real ram_demo config through Lightning's automatic optimisation (3 epochs)."""
    cfg = shrink(compose_cfg("train", tmp_path, []), tmp_path / "gen")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 3
        cfg.logger = None
        cfg.test = False
        cfg.callbacks.lr_log = {"_target_": f"{__name__}._LrLog"}
    _, objects = train(cfg)
    log = next(c for c in objects["trainer"].callbacks if isinstance(c, _LrLog))
    sched = cfg.model.scheduler
    kw = dict(warmup_epochs=sched.warmup_epochs, warmup_lr=sched.warmup_lr,
              min_lr=sched.min_lr, max_epochs=sched.max_epochs)  # fmt: skip
    base = {g: cfg.model.optimizer[g].lr for g in ("adapters", "temperatures", "prompts")}
    for epoch, lrs in enumerate(log.lrs, start=1):  # RAM's t = 1, 2, 3 at the epoch starts
        assert lrs == pytest.approx({g: warmup_cosine_lr(epoch, b, **kw) for g, b in base.items()},
                                    rel=0, abs=0)  # fmt: skip
    assert log.moved == [{"adapters": True, "temperatures": True, "prompts": True}] * 3
    assert len(objects["trainer"].optimizers) == 1  # AdamW, AdamW, SGD stepped as one
