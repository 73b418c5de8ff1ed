"""Task plumbing: hyper-parameters to every logger, the task wrapper, the ``debug/`` configs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import yaml
from helpers import CONFIG_DIR, compose_cfg, shrink
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import OmegaConf, open_dict

from ramlico.cli import evaluate, train


class RecordingLogger(Logger):
    """A logger that records its hyper-parameters and how it was finalised."""

    instances: list[RecordingLogger] = []

    def __init__(self) -> None:
        super().__init__()
        self.params: dict = {}
        self.finalized: list[str] = []
        RecordingLogger.instances.append(self)

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.params.update(params)

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def finalize(self, status: str) -> None:
        self.finalized.append(status)


def _demo(tmp_path: Path, overrides=()):
    cfg = shrink(compose_cfg("train", tmp_path, list(overrides)), tmp_path / "gen")  # ram_demo
    with open_dict(cfg):
        cfg.data.batch_size = 8  # 40 images: 5 batches per epoch
        cfg.data.eval_batch_size = 8
        cfg.data.val_max_images = 8
        cfg.trainer.num_sanity_val_steps = 0
    return cfg


def _add_logger(cfg, name: str) -> None:
    """Add the logger of configs/logger/<name>.yaml next to the configured ones."""
    with open_dict(cfg):
        if not cfg.get("logger"):
            cfg.logger = {}
        cfg.logger.merge_with(OmegaConf.load(Path(CONFIG_DIR) / "logger" / f"{name}.yaml"))


def _tensorboard_hparams(folder: Path) -> tuple[dict, list[str]]:
    """HPARAMS plugin values and metric tags written under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    values, metrics = {}, []
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        try:
            contents = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        except KeyError:  # the scalars' file; the hyper-parameters are in another one
            continue
        for tag, content in contents.items():
            data = metadata.parse_session_start_info_plugin_data
            if tag == metadata.SESSION_START_INFO_TAG:
                info = data(content)
                for key, value in info.hparams.items():
                    kind = value.WhichOneof("kind")
                    values[key] = getattr(value, kind)
            elif tag == metadata.EXPERIMENT_TAG:
                exp = metadata.parse_experiment_plugin_data(content)
                metrics += [m.name.tag for m in exp.metric_infos]
    return values, metrics


# ----------------------------------------------------------------------------- hyper-parameters
def test_train_logs_the_resolved_config_to_csv_and_tensorboard(tmp_path):
    cfg = _demo(tmp_path)
    _add_logger(cfg, "tensorboard")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
    assert set(cfg.logger) == {"csv", "tensorboard"}
    metrics, objects = train(cfg)
    model = objects["model"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = Path(cfg.paths.output_dir)

    csv_params = yaml.safe_load((out / "csv" / "version_0" / "hparams.yaml").read_text())
    assert csv_params["model"]["_target_"] == "ramlico.methods.RAM"
    assert csv_params["model"]["optimizer"]["prompts"]["lr"] == 1e-3  # ram_demo's value
    assert csv_params["model"]["kcot"]["solver"]["reg"] == 0.1
    assert csv_params["data"]["batch_size"] == 8 and csv_params["seed"] == 42
    assert csv_params["paths"]["output_dir"] == str(out)  # interpolations resolved
    assert "hydra" not in csv_params
    assert csv_params["model/params/trainable"] == trainable
    total = sum(p.numel() for p in model.parameters())
    assert csv_params["model/params/non_trainable"] == total - trainable

    tb_params = yaml.safe_load(next((out / "tensorboard").rglob("hparams.yaml")).read_text())
    assert tb_params["model"]["optimizer"] == csv_params["model"]["optimizer"]
    values, tags = _tensorboard_hparams(out / "tensorboard")
    assert values["model/_target_"] == "ramlico.methods.RAM"
    assert values["model/optimizer/prompts/lr"] == pytest.approx(1e-3)
    assert values["model/params/trainable"] == trainable
    assert "test/zsl/mAP" in tags and "test/gzsl/F1@3" in tags  # the HPARAMS tab's metrics
    assert metrics["test/zsl/mAP"] >= 0


def test_evaluate_logs_the_resolved_config(tmp_path):
    cfg = shrink(compose_cfg("eval", tmp_path, ["experiment=clip_zeroshot_demo"]), tmp_path / "gen")
    evaluate(cfg)
    params = yaml.safe_load(
        (Path(cfg.paths.output_dir) / "csv" / "version_0" / "hparams.yaml").read_text()
    )
    assert params["model"]["_target_"] == cfg.model._target_
    assert params["task_name"] == "eval" and params["model/params/trainable"] == 0


# ----------------------------------------------------------------------------- task wrapper
def test_a_failure_outside_fit_closes_the_loggers_and_is_logged(tmp_path, caplog):
    RecordingLogger.instances.clear()
    cfg = _demo(tmp_path)
    with open_dict(cfg):
        cfg.logger = {"recording": {"_target_": f"{__name__}.RecordingLogger"}}
        cfg.trainer.no_such_argument = 1  # the Trainer fails after the loggers were built
    with caplog.at_level(logging.ERROR, logger="ramlico.cli.wrapper"):
        with pytest.raises(Exception, match="no_such_argument"):
            train(cfg)
    (logger,) = RecordingLogger.instances
    assert logger.finalized == ["failed"]
    failures = [r for r in caplog.records if "train failed" in r.getMessage()]
    assert failures and str(tmp_path / "out") in failures[0].getMessage()
    assert failures[0].exc_info is not None  # the traceback goes to the job's log file


def test_a_failure_closes_an_open_wandb_run(tmp_path, monkeypatch):
    finished = []

    class FakeWandb:
        run = object()

        @staticmethod
        def finish(exit_code: int = 0) -> None:
            finished.append(exit_code)

    monkeypatch.setitem(sys.modules, "wandb", FakeWandb)
    cfg = _demo(tmp_path)
    with open_dict(cfg):
        cfg.logger = None
        cfg.model.optimizer.prompts.lrr = 0.1  # misspelt: fails while building the model
    with pytest.raises(Exception, match="lrr"):
        train(cfg)
    assert finished == [1]


def test_success_finalises_the_loggers_once_per_stage(tmp_path):
    RecordingLogger.instances.clear()
    cfg = _demo(tmp_path)
    with open_dict(cfg):
        cfg.logger = {"recording": {"_target_": f"{__name__}.RecordingLogger"}}
        cfg.trainer.max_epochs = 1
    train(cfg)
    (logger,) = RecordingLogger.instances
    assert logger.finalized == ["success", "success"]  # Lightning: after fit, after test
    assert logger.params["model"]["_target_"] == "ramlico.methods.RAM"


# ----------------------------------------------------------------------------- debug configs
class BatchLog(Callback):
    def __init__(self) -> None:
        self.sums: list[tuple[int, int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.sums.append((trainer.current_epoch, batch_idx, batch[0].double().sum().item()))


def _debug_run(tmp_path: Path, name: str, **trainer):
    cfg = _demo(tmp_path, [f"debug={name}"])
    assert cfg.task_name == "debug" and cfg.logger is None
    assert cfg.trainer.detect_anomaly is True and cfg.trainer.accelerator == "cpu"
    assert cfg.data.num_workers == 0
    composed = OmegaConf.to_container(cfg.trainer)
    with open_dict(cfg):
        cfg.trainer.update(trainer)
        cfg.callbacks.batch_log = {"_target_": f"{__name__}.BatchLog"}
    metrics, objects = train(cfg)
    log = next(c for c in objects["trainer"].callbacks if isinstance(c, BatchLog))
    return composed, metrics, objects["trainer"], log.sums


def test_debug_default_is_one_epoch(tmp_path):
    composed, metrics, trainer, batches = _debug_run(tmp_path, "default")
    assert composed["max_epochs"] == 1
    assert trainer.global_step == 5 and len(batches) == 5
    assert "test/zsl/mAP" in metrics


def test_debug_fdr_runs_one_batch_of_each_stage(tmp_path):
    composed, metrics, trainer, batches = _debug_run(tmp_path, "fdr")
    assert composed["fast_dev_run"] is True
    assert trainer.global_step == 1 and len(batches) == 1
    assert trainer.num_test_batches == [1, 1] and "test/gzsl/mAP" in metrics


def test_debug_overfit_repeats_the_same_batches(tmp_path):
    composed, _, trainer, batches = _debug_run(tmp_path, "overfit", max_epochs=2)
    assert composed["overfit_batches"] == 3 and composed["max_epochs"] == 20
    assert trainer.num_training_batches == 3 and trainer.global_step == 6
    first = [s for e, _, s in batches if e == 0]
    assert first == [s for e, _, s in batches if e == 1]  # same images, same order


def test_debug_limit_caps_every_stage(tmp_path):
    composed, _, trainer, batches = _debug_run(tmp_path, "limit")
    assert (composed["limit_train_batches"], composed["limit_test_batches"]) == (5, 2)
    assert trainer.global_step == 15 and len(batches) == 15  # 3 epochs x 5 batches
    assert trainer.num_test_batches == [2, 2]


def test_debug_limit_in_evaluate(tmp_path):
    cfg = shrink(
        compose_cfg("eval", tmp_path, ["experiment=clip_zeroshot_demo", "debug=limit"]),
        tmp_path / "gen",
    )
    with open_dict(cfg):
        cfg.data.eval_batch_size = 8  # 40 test images: 5 batches per split before the limit
    metrics, objects = evaluate(cfg)
    assert cfg.task_name == "debug"
    assert objects["trainer"].num_test_batches == [2, 2]
    assert "test/zsl/mAP" in metrics
