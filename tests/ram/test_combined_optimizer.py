"""CombinedOptimizer: steps equal the inner optimisers', shared groups, state round trip."""

from __future__ import annotations

import io

import pytest
import torch

from ramlico.utils.optim import CombinedOptimizer


def _params():
    torch.manual_seed(0)
    return torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(3))


def _loss(a, b):
    return (a**2).sum() + (b**3).sum()


def _pair(a, b):
    return (
        torch.optim.AdamW([a], lr=0.1, weight_decay=0.01),
        torch.optim.SGD([b], lr=0.05, momentum=0.9, weight_decay=1e-4),
    )


def test_three_steps_equal_the_separate_optimisers():
    a1, b1 = _params()
    a2, b2 = _params()
    combined = CombinedOptimizer(_pair(a1, b1))
    sep = _pair(a2, b2)
    for _ in range(3):
        combined.zero_grad()
        _loss(a1, b1).backward()
        combined.step()
        for o in sep:
            o.zero_grad()
        _loss(a2, b2).backward()
        for o in sep:
            o.step()
    assert torch.equal(a1, a2) and torch.equal(b1, b2)


def test_closure_is_called_once_and_lr_changes_reach_the_inner_optimiser():
    a, b = _params()
    combined = CombinedOptimizer(_pair(a, b))
    calls = []

    def closure():
        calls.append(1)
        combined.zero_grad()
        loss = _loss(a, b)
        loss.backward()
        return loss

    assert combined.step(closure) is not None and len(calls) == 1
    combined.param_groups[1]["lr"] = 0.5
    assert combined.optimizers[1].param_groups[0]["lr"] == 0.5
    assert len(combined.state) == 2  # AdamW moments of a, SGD momentum of b


def test_state_dict_round_trip_with_weights_only_load():
    a, b = _params()
    combined = CombinedOptimizer(_pair(a, b))
    _loss(a, b).backward()
    combined.step()
    buf = io.BytesIO()
    torch.save(combined.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    a2, b2 = _params()
    fresh = CombinedOptimizer(_pair(a2, b2))
    fresh.load_state_dict(state)
    moment = fresh.optimizers[1].state[b2]["momentum_buffer"]
    assert torch.equal(moment, combined.optimizers[1].state[b]["momentum_buffer"])
    with pytest.raises(ValueError, match="inner optimisers"):
        CombinedOptimizer([torch.optim.SGD([a2], lr=1)]).load_state_dict(state)


def test_shared_parameters_are_refused():
    a, _ = _params()
    with pytest.raises(ValueError, match="more than one"):
        CombinedOptimizer([torch.optim.SGD([a], lr=1), torch.optim.AdamW([a])])


def test_state_lookups_never_leak_into_another_optimisers_state():
    a, b = _params()
    combined = CombinedOptimizer(_pair(a, b))
    _loss(a, b).backward()
    combined.step()
    assert "momentum_buffer" in combined.state[b] and "exp_avg" in combined.state[a]
    assert b not in combined.optimizers[0].state and a not in combined.optimizers[1].state
    combined.state_dict()  # packs each inner state with its own parameters
