"""EMA shadows of trainable tensors: the update formula, evaluation swap, what is tracked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ramlico.methods import RAM
from ramlico.modules.ema import EMAShadow, ema_tracked_names


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
    torch.testing.assert_close(ema.average["lin.weight"], 0.81 * w0 + 0.09 + 0.3)
    assert "frozen.weight" not in ema.average  # frozen tensors are not tracked
    assert "bn.running_mean" in ema.average  # statistics of trainable BatchNorms are
    assert "bn.num_batches_tracked" not in ema.average  # integer buffers are not averaged


def test_swap_in_evaluates_the_average_and_swap_out_restores_the_live_weights():
    owner = _Owner()
    ema = EMAShadow(owner, decay=0.5)
    live0 = owner.lin.weight.detach().clone()
    with torch.no_grad():
        owner.lin.weight.add_(2.0)
        owner.bn.running_mean.fill_(4.0)
    ema.update(owner)  # shadow = live0 + 1, running_mean shadow = 2
    current = owner.lin.weight.detach().clone()
    with ema.swapped(owner):
        assert ema.active
        torch.testing.assert_close(owner.lin.weight, live0 + 1.0)
        torch.testing.assert_close(owner.bn.running_mean, torch.tensor([2.0]))
        torch.testing.assert_close(ema.average["lin.weight"], live0 + 1.0)  # still the average
    assert not ema.active
    assert torch.equal(owner.lin.weight, current)
    assert torch.equal(owner.bn.running_mean, torch.tensor([4.0]))
    with pytest.raises(ValueError, match="decay"):
        EMAShadow(owner, decay=1.0)
    with pytest.raises(KeyError, match="does not fit"):
        ema.load({"lin.weight": live0})


def test_ram_tracks_exactly_its_side_network_prompts_temperatures_and_bn_statistics(tiny_clip):
    model = RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
                text_prompt_layers=[1])  # fmt: skip
    names = ema_tracked_names(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names[: len(trainable)] == trainable
    stats = names[len(trainable) :]
    assert stats and all(n.startswith("ladder.") and "running_" in n for n in stats)
    assert not any(n.startswith("backbone.") for n in names)
