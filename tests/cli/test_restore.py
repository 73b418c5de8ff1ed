"""evaluate.py restores data and preprocessing from the checkpoint; mismatches name both values."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from helpers import compose_cfg, shrink, tiny_custom, write_custom_data
from omegaconf import open_dict

from ramlico.cli import evaluate, train
from ramlico.cli.checkpoint import CheckpointMismatch, restore_run, with_checkpoint_choices

TRAIN = ["experiment=ram_custom", "model/backbone=clip_tiny", "model.template='{}'",
         "data.seen=[car,cat,dog]", "data.unseen=[bus,sofa]"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """ram_custom (tiny CLIP) on custom CSV data: 3 seen, 2 unseen labels, mean = std = 0.5."""
    tmp = tmp_path_factory.mktemp("restore")
    data = write_custom_data(tmp / "mine")
    overrides = [*TRAIN, f"data.root={data}"]
    cfg = tiny_custom(compose_cfg("train", tmp / "train", overrides, hydra=True))
    metrics, objects = train(cfg)
    ckpt = objects["trainer"].checkpoint_callback.best_model_path
    return tmp, data, cfg, metrics, Path(ckpt)


def _eval_cfg(tmp: Path, name: str, overrides: list[str]):
    """The eval config as `python evaluate.py <overrides>` composes it."""
    cfg = compose_cfg("eval", tmp / name, with_checkpoint_choices(overrides), hydra=True)
    with open_dict(cfg):
        cfg.logger = None
        cfg.callbacks = None
        cfg.trainer.enable_progress_bar = False
    return cfg


def test_checkpoint_records_the_experiment_and_command_line(run):
    *_, ckpt = run
    args = [f"ckpt_path={ckpt}", "data.seen=[car]"]
    assert with_checkpoint_choices(args) == [
        "experiment=ram_custom", "data=custom", "model=ram", "model/backbone=clip_tiny", *args
    ]  # fmt: skip
    assert with_checkpoint_choices(["data=generated", *args])[:3] == [
        "experiment=ram_custom", "model=ram", "model/backbone=clip_tiny"
    ]  # fmt: skip
    assert with_checkpoint_choices([*args, "use_checkpoint_config=false"])[0] == args[0]
    restored = restore_run(_eval_cfg(run[0], "r0", [f"ckpt_path={ckpt}"]))
    assert restored.experiment == "ram_custom"
    assert restored.ckpt["ramlico"]["launch"]["overrides"][:2] == TRAIN[:2]
    assert restored.preprocessing == {"image_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3}


def test_evaluate_with_only_ckpt_path(run):
    tmp, data, _, metrics, ckpt = run
    # eval.yaml's defaults are other data (generated, CLIP mean/std, 224 px) and another model
    emetrics, objects = evaluate(_eval_cfg(tmp, "e1", [f"ckpt_path={ckpt}"]))
    cfg = objects["cfg"]
    assert type(objects["model"]).__name__ == "RAM"
    assert cfg.data.source == "custom" and cfg.data.root == str(data)
    assert list(cfg.data.seen) == ["car", "cat", "dog"] and list(cfg.data.unseen) == ["bus", "sofa"]
    assert (cfg.data.image_size, list(cfg.data.mean)) == (64, [0.5] * 3)
    for key in ("test/zsl/mAP", "test/zsl/F1@2", "test/gzsl/mAP", "test/gzsl/F1@3"):
        assert emetrics[key] == pytest.approx(metrics[key], abs=1e-4), key


def test_another_experiment_is_an_error_naming_both(run):
    tmp, *_, ckpt = run
    cfg = _eval_cfg(tmp, "e2", [f"ckpt_path={ckpt}", "experiment=lico_demo"])
    with pytest.raises(
        CheckpointMismatch,
        match=r"trained with experiment=ram_custom "
        r"\(ramlico.methods.RAM\), but experiment=lico_demo "
        r"\(ramlico.methods.LICOModule\) was requested",
    ):
        evaluate(cfg)
    # the checkpoint's own experiment is fine (the README's evaluate command)
    ok = _eval_cfg(tmp, "e3", [f"ckpt_path={ckpt}", "experiment=ram_custom"])
    metrics, objects = evaluate(ok)
    assert objects["cfg"].data.root == str(run[1])  # still the checkpoint's data, not ./data


def test_explicit_preprocessing_override_is_an_error_naming_both(run):
    tmp, *_, ckpt = run
    cfg = _eval_cfg(tmp, "e4", [f"ckpt_path={ckpt}", "data.mean=[0.4,0.4,0.4]"])
    with pytest.raises(
        CheckpointMismatch,
        match=r"data.mean=\[0.4, 0.4, 0.4\] differs from the "
        r"checkpoint's \[0.5, 0.5, 0.5\]",
    ):
        evaluate(cfg)


def test_data_group_override_keeps_the_checkpoint_preprocessing(run):
    tmp, data, _, metrics, ckpt = run
    # data=custom alone would normalise with CLIP's mean/std at 224 px (custom.yaml's defaults)
    cfg = _eval_cfg(tmp, "e5", [f"ckpt_path={ckpt}", "data=custom", f"data.root={data}",
                                "data.seen=[car,cat,dog]", "data.unseen=[bus,sofa]"])  # fmt: skip
    emetrics, objects = evaluate(cfg)
    assert list(objects["cfg"].data.mean) == [0.5] * 3 and objects["cfg"].data.image_size == 64
    assert emetrics["test/gzsl/mAP"] == pytest.approx(metrics["test/gzsl/mAP"], abs=1e-4)


def test_trained_labels_evaluated_as_unseen_are_an_error(run):
    tmp, *_, ckpt = run
    cfg = _eval_cfg(tmp, "e6", [f"ckpt_path={ckpt}", "data.seen=[car,dog]",
                                "data.unseen=[bus,cat,sofa]"])  # fmt: skip
    with pytest.raises(
        CheckpointMismatch,
        match=r"labels \['cat'\] are unseen in this "
        r"evaluation, but .* was trained on them",
    ):
        evaluate(cfg)


def test_other_data_of_an_open_vocabulary_model_is_a_warning(run, caplog):
    tmp, *_, ckpt = run
    caplog.set_level(logging.INFO, logger="ramlico.cli.evaluate")
    cfg = shrink(_eval_cfg(tmp, "e7", [f"ckpt_path={ckpt}", "data=generated"]), tmp / "gen")
    metrics, objects = evaluate(cfg)
    assert "evaluating on other seen labels than the checkpoint was trained on" in caplog.text
    assert objects["cfg"].data.source == "generated" and objects["cfg"].data.image_size == 64
    assert "data=generated: preprocessing from the checkpoint {'image_size': 64" in caplog.text
    assert "test/zsl/mAP" in metrics


def test_data_root_override_moves_the_checkpoint_paths(run, tmp_path):
    tmp, data, *_, ckpt = run
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    restored = restore_run(_eval_cfg(tmp, "e8", [f"ckpt_path={ckpt}", f"data.root={moved}"]))
    assert restored.data_cfg.train_file == str(moved / "train.csv")
    assert restored.data_cfg.test_file == str(moved / "test.csv")
    assert restored.data_cfg.image_root == str(moved)
    assert any("data.root=" in note for note in restored.notes)
