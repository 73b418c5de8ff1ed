"""The toy models' shared training pieces: the learning-rate schedule and the step loader."""

from __future__ import annotations

import math

import pytest

from ramlico.toy.training import StepDataset, cosine_lr


def test_cosine_lr_warms_up_linearly_then_decays_to_zero():
    lr, warmup, steps = 2e-3, 4, 14
    assert [cosine_lr(t, lr, warmup, steps) for t in range(4)] == pytest.approx(
        [5e-4, 1e-3, 1.5e-3, 2e-3]
    )
    assert cosine_lr(4, lr, warmup, steps) == pytest.approx(lr)  # peak right after warm-up
    assert cosine_lr(9, lr, warmup, steps) == pytest.approx(lr / 2)  # half-way: cos(pi/2) = 0
    assert cosine_lr(7, lr, warmup, steps) == pytest.approx(lr / 2 * (1 + math.cos(0.3 * math.pi)))
    assert cosine_lr(14, lr, warmup, steps) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(0, lr, 0, steps) == pytest.approx(lr)  # no warm-up


def test_step_dataset_serves_the_steps_from_start():
    data = StepDataset(lambda step: step * 10, start=3, stop=7)
    assert len(data) == 4
    assert [data[i] for i in range(len(data))] == [30, 40, 50, 60]
