"""SolverOptions: the engine's settings as one checked dataclass."""

from __future__ import annotations

import pytest
import torch

from ramlico.ot import SolverOptions, sinkhorn


def test_solve_kwargs_reproduce_a_direct_call():
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(3, 5, 4, generator=g)
    opts = SolverOptions(reg=0.2, max_iter=50, tol=1e-6, stop_rule="all", order="cols_first")
    got = sinkhorn(cost, None, None, opts.reg, **opts.solve_kwargs())
    ref = sinkhorn(cost, None, None, 0.2, max_iter=50, tol=1e-6, stop_rule="all",
                   order="cols_first")  # fmt: skip
    assert torch.equal(got.plan, ref.plan) and torch.equal(got.n_iter, ref.n_iter)
    assert "reg" not in opts.solve_kwargs()
    # defaults are the engine's own
    default = sinkhorn(cost, None, None, 0.1, **SolverOptions().solve_kwargs())
    torch.testing.assert_close(default.plan, sinkhorn(cost, None, None, 0.1).plan, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"reg": 0.0}, "reg must be a finite number > 0"),
        ({"reg": float("inf")}, "reg must be a finite number > 0"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"tol": -1.0}, "tol must be > 0 or null"),
        ({"check_every": 0}, "check_every must be >= 1 or null"),
        ({"stop_rule": "any"}, r"stop_rule='any' is not supported; choose one of \('per_problem'"),
        ({"order": "rows"}, "order='rows' is not supported"),
        ({"stop_metric": "l1"}, "stop_metric='l1' is not supported"),
        ({"fast": "cuda"}, r"fast='cuda' is not supported; choose one of \('auto', 'off'"),
    ],
)
def test_bad_values_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        SolverOptions(**kw)


def test_unknown_options_list_the_allowed_ones_and_yaml_lists_become_tuples():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['eps'\]; allowed: \['check_every'"):
        SolverOptions(eps=0.1)
    assert SolverOptions(reg_m=[1.0, 2.0]).reg_m == (1.0, 2.0)
    assert SolverOptions(fast="off").solve_kwargs()["fast"] == "off"  # reaches the engine
    assert SolverOptions.build({"reg": 0.3}) == SolverOptions(reg=0.3)
    assert SolverOptions.build(None) == SolverOptions()
    with pytest.raises(TypeError, match="expected SolverOptions or a mapping"):
        SolverOptions.build(0.1)


def test_build_over_a_preset_changes_only_the_named_fields():
    preset = SolverOptions(reg=0.01, max_iter=4, order="cols_first", check_every=None)
    assert SolverOptions.build(None, preset) is preset
    got = SolverOptions.build({"tol": 1e-5, "check_every": 1}, preset)
    assert got == SolverOptions(reg=0.01, max_iter=4, order="cols_first", tol=1e-5, check_every=1)
    built = SolverOptions(reg=0.2)
    assert SolverOptions.build(built, preset) is built  # a built object is used as it is
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['iters'\]"):
        SolverOptions.build({"iters": 3}, preset)
