"""python -m ramlico.toy.train_vfm: a short smoke run (the full recipe is not run in CI).

Checks: the tag targets name every object of a scene; the run writes loadable fp16 weights (no tag
head) and a card that matches them; two runs with the same seed give the same bits; a killed run
resumed from its state file ends with the same weights; bad arguments are named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ramlico.backbones import TimmBackbone
from ramlico.data.scenes import ALL_COLOURS, ALL_SHAPES
from ramlico.toy import train_vfm
from ramlico.toy.card import file_sha256
from ramlico.toy.data import pretraining_scene
from ramlico.toy.vfm_card import read_card

SMOKE = ["--steps", "3", "--batch-size", "8", "--warmup-steps", "1", "--workers", "0",
         "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_vfm")
    return out, train_vfm.main(["--out", str(out), *SMOKE])


def test_tags_are_the_objects_of_each_scene():
    assert len(train_vfm.TAGS) == len(ALL_COLOURS) * len(ALL_SHAPES) == 49
    images, targets = train_vfm.tag_batch(0, [3, 4, 5])
    assert images.shape == (3, 3, 64, 64) and targets.shape == (3, 49)
    for row, i in enumerate([3, 4, 5]):
        objects, _ = pretraining_scene(np.random.default_rng([0, i]), 64)
        names = {f"{o.colour} {o.shape}" for o in objects}
        assert {train_vfm.TAGS[j] for j in targets[row].nonzero().flatten().tolist()} == names
    again, _ = train_vfm.tag_batch(0, [4])
    torch.testing.assert_close(again[0], images[1], rtol=0, atol=0)  # a pure function of (seed, i)


def test_smoke_run_writes_fp16_weights_and_a_matching_card(smoke_run):
    out, card = smoke_run
    weights = out / "vfm_toy.safetensors"
    state = load_file(str(weights))
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert not any(k.startswith("head.fc") for k in state)  # the tag head is not exported
    assert card == read_card(out) and card["sha256"] == file_sha256(weights)
    assert card["recipe"]["steps"] == 3 and card["training"]["cpu_s"] > 0
    assert (out / "VFM_CARD.md").read_text().count(card["sha256"]) == 1
    vfm = TimmBackbone("regnetx_002", pretrained=str(weights))
    torch.testing.assert_close(vfm.model.stem.conv.weight, state["stem.conv.weight"].float())
    assert card["feature_dim"] == vfm.num_features == 368
    # three steps learn next to nothing: the classes barely group (chance 5 %)
    assert card["features"]["hard_ncm_top1"] < 40


def test_same_seed_same_bits_other_seed_other_bits(smoke_run, tmp_path):
    out, card = smoke_run
    again = train_vfm.main(["--out", str(tmp_path / "a"), *SMOKE])
    other = train_vfm.main(["--out", str(tmp_path / "b"), *SMOKE, "--seed", "1"])
    assert again["sha256"] == card["sha256"]
    assert other["sha256"] != card["sha256"]


def test_a_killed_run_resumes_to_the_same_weights(smoke_run, tmp_path, monkeypatch):
    out, card = smoke_run
    real = train_vfm._TagStream.__call__

    def dies_at_step_2(self, step):
        if step == 2:
            raise KeyboardInterrupt("killed")
        return real(self, step)

    run = tmp_path / "killed"
    monkeypatch.setattr(train_vfm._TagStream, "__call__", dies_at_step_2)
    monkeypatch.setattr(train_vfm, "SAVE_EVERY", 1)
    with pytest.raises(KeyboardInterrupt):
        train_vfm.main(["--out", str(run), *SMOKE])
    monkeypatch.setattr(train_vfm._TagStream, "__call__", real)
    resumed = train_vfm.main(["--out", str(run), *SMOKE, "--resume"])
    assert resumed["sha256"] == card["sha256"]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="--batch-size must be >= 1"):
        train_vfm.main(["--out", str(tmp_path), "--batch-size", "0"])
    with pytest.raises(ValueError, match="--warmup-steps"):
        train_vfm.main(["--out", str(tmp_path), "--steps", "2", "--warmup-steps", "5"])
    with pytest.raises(ValueError, match="--lr must be > 0"):
        train_vfm.main(["--out", str(tmp_path), "--lr", "0"])
