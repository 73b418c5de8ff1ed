"""Tests of ``ramlico.ot.SinkhornOT``: it forwards its stored settings and per-call overrides to
``ramlico.ot.sinkhorn`` unchanged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ot_testing import F64

from ramlico.ot import SinkhornOT, SinkhornWarning, sinkhorn

FIELDS = ("plan", "f", "g", "n_iter", "converged", "err", "value")


def _assert_same(res, ref):
    for name in FIELDS:
        assert torch.equal(getattr(res, name), getattr(ref, name)), name


@pytest.fixture
def problem():
    rng = np.random.default_rng(50)
    cost = torch.tensor(rng.uniform(0, 1, (2, 5, 4)))
    a = torch.tensor(rng.dirichlet(np.ones(5), 2))
    b = torch.tensor(rng.dirichlet(np.ones(4)))
    return cost, a, b


def test_forward_uses_the_stored_settings(problem):
    cost, a, b = problem
    settings = dict(
        reg=0.2,
        max_iter=50,
        tol=1e-6,
        stop_metric="marginal_l2",
        stop_rule="all",
        order="cols_first",
        check_every=3,
        method="log",
    )
    layer = SinkhornOT(**settings)
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    _assert_same(layer(cost, a, b), sinkhorn(cost, a, b, **settings))
    assert "reg=0.2" in layer.extra_repr() and "order=cols_first" in layer.extra_repr()
    # The settings matter: a different reg gives a different plan.
    assert not torch.equal(layer(cost, a, b).plan, sinkhorn(cost, a, b, 0.3, max_iter=50).plan)


def test_overrides_apply_to_one_call_only(problem):
    cost, a, b = problem
    layer = SinkhornOT(reg=0.2, max_iter=50)
    _assert_same(
        layer(cost, a, b, reg=0.5, order="cols_first", max_iter=7),
        sinkhorn(cost, a, b, 0.5, order="cols_first", max_iter=7),
    )
    assert layer.settings["reg"] == 0.2 and layer.settings["max_iter"] == 50
    _assert_same(layer(cost, a, b), sinkhorn(cost, a, b, 0.2, max_iter=50))


def test_extra_options_are_forwarded(problem):
    cost, a, b = problem
    layer = SinkhornOT(reg=0.05, max_iter=2, tol=1e-12, reg_m=(1.0, float("inf")))
    with pytest.warns(SinkhornWarning, match="did not reach tol=1e-12"):
        res = layer(cost, a, b)
    _assert_same(
        res,
        sinkhorn(cost, a, b, 0.05, max_iter=2, tol=1e-12, reg_m=(1.0, float("inf")), warn=False),
    )
    quiet = SinkhornOT(reg=0.05, max_iter=2, tol=1e-12, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(cost, a, b)
    contract = SinkhornOT(reg=0.2, output="contract", contract_with=torch.ones(5, 4, dtype=F64))
    torch.testing.assert_close(
        contract(cost, a, b).contraction, torch.ones(2, dtype=F64), rtol=0, atol=1e-12
    )  # plan mass is 1


def test_log_kernel_input(problem):
    cost, a, b = problem
    layer = SinkhornOT(reg=0.2, max_iter=20)
    lk = -cost / 0.2
    # The stored reg is passed along (it scales the value and the potential metric).
    _assert_same(
        layer(None, a, b, log_kernel=lk), sinkhorn(None, a, b, 0.2, log_kernel=lk, max_iter=20)
    )
    torch.testing.assert_close(
        layer(None, a, b, log_kernel=lk).plan, layer(cost, a, b).plan, rtol=0, atol=1e-15
    )


def test_invalid_reg_raises():
    with pytest.raises(ValueError, match=r"reg must be > 0, got 0.0"):
        SinkhornOT(reg=0.0)
    with pytest.raises(ValueError, match=r"order='diagonal' is not supported"):
        SinkhornOT(order="diagonal")(torch.rand(3, 3, dtype=F64))
