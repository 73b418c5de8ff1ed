"""EMA of trainable tensors: the update formula, swapping for evaluation, RAM integration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ramlico.methods import RAM
from ramlico.modules.ema import EMAShadow


class _Owner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(2, 2).requires_grad_(False)
        self.lin = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)


def test_update_is_the_exponential_average_of_the_trainable_tensors():
    owner = _Owner()
    ema = EMAShadow(owner, decay=0.9)
    w0 = owner.lin.weight.detach().clone()
    with torch.no_grad():
        owner.lin.weight.fill_(1.0)
    ema.update(owner)
    with torch.no_grad():
        owner.lin.weight.fill_(3.0)
    ema.update(owner)
    # s2 = 0.9 (0.9 w0 + 0.1 * 1) + 0.1 * 3
    torch.testing.assert_close(ema.lin__weight, 0.81 * w0 + 0.09 + 0.3)
    assert not hasattr(ema, "frozen__weight")  # frozen tensors are not tracked
    assert hasattr(ema, "bn__running_mean")  # statistics of trainable BatchNorms are


def test_swapped_evaluates_with_the_average_and_restores_the_live_weights():
    owner = _Owner()
    ema = EMAShadow(owner, decay=0.5)
    live = owner.lin.weight.detach().clone()
    with torch.no_grad():
        owner.lin.weight.add_(2.0)
    ema.update(owner)  # shadow = live + 1
    current = owner.lin.weight.detach().clone()
    with ema.swapped(owner):
        torch.testing.assert_close(owner.lin.weight, live + 1.0)
    assert torch.equal(owner.lin.weight, current)
    with pytest.raises(ValueError, match="decay"):
        EMAShadow(owner, decay=1.0)


def test_ram_tracks_its_trainable_tensors_and_swaps_for_test(tiny_clip):
    torch.manual_seed(0)
    model = RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
                text_prompt_layers=[1], ema={"decay": 0.5})  # fmt: skip
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = model.trainable_state_dict()
    assert {f"ema.{n.replace('.', '__')}" for n in trainable} <= set(state)
    prompt = model.text_prompts.prompts["1"]
    with torch.no_grad():
        prompt.add_(1.0)
    model.on_train_batch_end(None, None, 0)  # one EMA step: shadow = old + 0.5
    live = prompt.detach().clone()
    model.on_test_start()
    torch.testing.assert_close(model.text_prompts.prompts["1"], live - 0.5)
    model.on_test_end()
    assert torch.equal(model.text_prompts.prompts["1"], live)
    with pytest.raises(ValueError, match="unknown keys"):
        RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
            text_prompt_layers=[1], ema={"decay": 0.5, "every": 2})  # fmt: skip
