"""python -m ramlico.toy.train_clip: a short smoke run (the full recipe is not run in CI).

Checks: the run writes loadable fp16 weights and a card that matches them; two runs with the same
seed give the same bits; a killed run resumed from its state file ends with the same weights.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from ramlico.backbones import CLIPBackbone
from ramlico.toy import train_clip
from ramlico.toy.card import file_sha256, read_card

SMOKE = ["--steps", "3", "--batch-size", "8", "--warmup-steps", "1", "--eval-every", "0",
         "--workers", "0", "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_clip")
    return out, train_clip.main(["--out", str(out), *SMOKE])


def test_smoke_run_writes_fp16_weights_and_a_matching_card(smoke_run):
    out, card = smoke_run
    weights = out / "clip_toy.safetensors"
    state = load_file(str(weights))
    assert {v.dtype for v in state.values()} == {torch.float16}
    assert state["token_embedding.weight"].shape == (49408, 64)  # the full BPE table
    assert card == read_card(out) and card["sha256"] == file_sha256(weights)
    assert card["recipe"]["steps"] == 3 and card["training"]["cpu_s"] > 0
    assert (out / "MODEL_CARD.md").read_text().count(card["sha256"]) == 1
    clip = CLIPBackbone("ramlico-toy-ViT", pretrained=str(weights))
    torch.testing.assert_close(clip.model.visual.proj, state["visual.proj"].float())
    # three steps learn next to nothing: about chance on the 20 labels (5 %)
    assert card["zero_shot"]["easy_top1"] < 30


def test_same_seed_same_bits_other_seed_other_bits(smoke_run, tmp_path):
    out, card = smoke_run
    again = train_clip.main(["--out", str(tmp_path / "a"), *SMOKE])
    other = train_clip.main(["--out", str(tmp_path / "b"), *SMOKE, "--seed", "1"])
    assert again["sha256"] == card["sha256"]
    assert other["sha256"] != card["sha256"]


def test_a_killed_run_resumes_to_the_same_weights(smoke_run, tmp_path, monkeypatch):
    out, card = smoke_run
    real = train_clip._BatchStream.__call__

    def dies_at_step_2(self, step):
        if step == 2:
            raise KeyboardInterrupt("killed")
        return real(self, step)

    run = tmp_path / "killed"
    monkeypatch.setattr(train_clip._BatchStream, "__call__", dies_at_step_2)
    monkeypatch.setattr(train_clip, "SAVE_EVERY", 1)
    with pytest.raises(KeyboardInterrupt):
        train_clip.main(["--out", str(run), *SMOKE])
    monkeypatch.setattr(train_clip._BatchStream, "__call__", real)
    resumed = train_clip.main(["--out", str(run), *SMOKE, "--resume"])
    assert resumed["sha256"] == card["sha256"]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="--steps must be >= 1"):
        train_clip.main(["--out", str(tmp_path), "--steps", "0"])
    with pytest.raises(ValueError, match="--warmup-steps"):
        train_clip.main(["--out", str(tmp_path), "--steps", "2", "--warmup-steps", "5"])
