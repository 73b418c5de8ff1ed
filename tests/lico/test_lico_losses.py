"""LICO's MM and OT losses: hand-computed values, POT agreement, envelope gradients."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import ot
import pytest
import torch

from ramlico.losses.lico import (
    LICO_SOLVER,
    ManifoldMatchingLoss,
    clamped_euclidean_distance,
    manifold_matching_loss,
    ot_alignment_loss,
)


def test_mm_loss_matches_a_hand_computed_three_sample_example():
    # Unit 2-D vectors, tau = 1, paper sign (softmax of -D). Distances: sqrt(2) between
    # orthogonal vectors, 0.01 (= sqrt of the 1e-4 floor) between equal ones and on the diagonal.
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # D^F rows: [d,s,d] [s,d,s] [d,s,d]
    txt = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # D^G rows: [d,d,s] [d,d,s] [s,s,d]
    p, q = math.exp(-0.01), math.exp(-math.sqrt(2))
    a, b = p / (2 * p + q), q / (2 * p + q)  # row with two near, one far: [a, b, a] (or [a,a,b])
    c, e = q / (p + 2 * q), p / (p + 2 * q)  # row with one near, two far: [c, e, c]
    kl0 = a * math.log(a / a) + a * math.log(a / b) + b * math.log(b / a)  # G=[a,a,b] F=[a,b,a]
    kl1 = a * math.log(a / c) + a * math.log(a / e) + b * math.log(b / c)  # G=[a,a,b] F=[c,e,c]
    kl2 = c * math.log(c / a) + c * math.log(c / b) + e * math.log(e / a)  # G=[c,c,e] F=[a,b,a]
    expected = (kl0 + kl1 + kl2) / 3  # = 0.288618
    got = manifold_matching_loss(img, txt, tau=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.2886179, abs=1e-6)
    # scaling a row does not change anything (both sides are L2-normalised)
    assert manifold_matching_loss(img * 3.0, txt, 1.0).item() == pytest.approx(expected, rel=1e-5)


def test_mm_loss_equals_a_naive_double_loop_for_both_signs():
    gen = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 7, generator=gen), torch.randn(5, 4, generator=gen)
    for sign in (-1, 1):
        fi = torch.nn.functional.normalize(img.double(), dim=-1)
        ft = torch.nn.functional.normalize(txt.double(), dim=-1)
        total = 0.0

        def logit(x, i, j, sign=sign):
            return sign * max(float((x[i] - x[j]).pow(2).sum()), 1e-4) ** 0.5 / 0.7

        for i in range(5):
            lf = [logit(fi, i, j) for j in range(5)]
            lg = [logit(ft, i, j) for j in range(5)]
            zf, zg = sum(map(math.exp, lf)), sum(map(math.exp, lg))
            for j in range(5):
                pg, pf = math.exp(lg[j]) / zg, math.exp(lf[j]) / zf
                total += pg * math.log(pg / pf)
        got = manifold_matching_loss(img, txt, 0.7, sign=sign).item()
        assert got == pytest.approx(total / 5, rel=1e-4)


def test_mm_loss_is_zero_for_equal_manifolds_and_finite_with_duplicate_classes():
    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    assert manifold_matching_loss(x, 2 * x, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    txt = torch.randn(2, 8).repeat(3, 1).requires_grad_()  # duplicated classes: D^G = 0.01
    img = x.clone().requires_grad_()
    loss = manifold_matching_loss(img, txt, 2.659)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(img.grad).all() and torch.isfinite(txt.grad).all()
    d = clamped_euclidean_distance(torch.nn.functional.normalize(txt.detach(), dim=-1))
    assert d[0, 2].item() == pytest.approx(0.01)  # same class -> the 1e-4 floor


def test_mm_module_temperature_parametrisations_and_gradient():
    raw = ManifoldMatchingLoss(tau_init=2.0)
    exp = ManifoldMatchingLoss(tau_init=2.0, parametrization="exp")
    assert raw.tau.item() == pytest.approx(2.0) and exp.tau.item() == pytest.approx(2.0)
    raw.tau_param.data.fill_(-1.0)
    assert raw.tau.item() == pytest.approx(0.01)  # clamped for safety
    gen = torch.Generator().manual_seed(2)
    loss = exp(torch.randn(4, 5, generator=gen), torch.randn(4, 3, generator=gen))
    loss.backward()
    assert exp.tau_param.grad is not None and exp.tau_param.grad.abs().item() > 0
    with pytest.raises(ValueError, match="parametrization"):
        ManifoldMatchingLoss(parametrization="softplus")


def _pot_plan(cost: torch.Tensor, reg: float) -> np.ndarray:
    n, m = cost.shape
    return ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), cost.numpy(), reg,
                       method="sinkhorn_log", numItermax=10000, stopThr=1e-12)  # fmt: skip


def test_ot_loss_equals_pots_entropic_transport_cost():
    gen = torch.Generator().manual_seed(3)
    feats = torch.randn(3, 6, 5, generator=gen, dtype=torch.float64)  # B=3, N=6, d'=5
    prompts = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)  # M=4
    loss, plan = ot_alignment_loss(feats, prompts, replace(LICO_SOLVER, max_iter=2000, tol=1e-10))
    expected = []
    for i in range(3):
        fh = torch.nn.functional.normalize(feats[i], dim=-1)
        gh = torch.nn.functional.normalize(prompts[i], dim=-1)
        cost = torch.cdist(fh, gh) ** 2  # (N, M) squared Euclidean between unit rows, in [0, 4]
        pot = _pot_plan(cost, 0.1)
        np.testing.assert_allclose(plan[i].numpy(), pot, atol=1e-7)
        expected.append(float((pot * cost.numpy()).sum()))  # POT's <T*, C> (sinkhorn2 value)
        assert ot.sinkhorn2(np.full(6, 1 / 6), np.full(4, 1 / 4), cost.numpy(), 0.1,
                            method="sinkhorn_log", stopThr=1e-12, numItermax=10000) == \
            pytest.approx(expected[-1], rel=1e-6)  # fmt: skip
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-6)


def test_ot_gradient_is_the_detached_plan_and_reaches_both_sides():
    gen = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    prompts = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    loss, plan = ot_alignment_loss(feats, prompts)
    loss.backward()
    assert plan.requires_grad is False
    assert feats.grad.abs().sum() > 0 and prompts.grad.abs().sum() > 0  # reference bug: zero
    # Envelope: the feature gradient equals that of <sg(T*), C(F)> / B with C built by hand
    f2 = feats.detach().requires_grad_()
    fh = torch.nn.functional.normalize(f2, dim=-1)
    gh = torch.nn.functional.normalize(prompts.detach(), dim=-1)
    cost = (fh.unsqueeze(2) - gh.unsqueeze(1)).pow(2).sum(-1)  # (B, N, M)
    ((plan * cost).sum((1, 2)).mean()).backward()
    torch.testing.assert_close(feats.grad, f2.grad)
    # ... and T* is the gradient of the entropic OT value: finite differences on C
    c = cost.detach()[0]
    eps, (i, j) = 1e-5, (1, 2)
    bump = torch.zeros_like(c)
    bump[i, j] = eps

    def value(cc):
        p = ot.sinkhorn(np.full(5, 0.2), np.full(4, 0.25), cc.numpy(), 0.1,
                        method="sinkhorn_log", stopThr=1e-13, numItermax=20000)  # fmt: skip
        return float((p * cc.numpy()).sum() + 0.1 * (p * np.log(p)).sum())

    fd = (value(c + bump) - value(c - bump)) / (2 * eps)
    assert fd == pytest.approx(plan[0, i, j].item(), rel=1e-4)


def test_ot_all_zero_channel_costs_one_to_every_prompt():
    # A single all-zero channel normalises to 0: ||0 - g||^2 = 1 for every unit prompt row,
    # so the plan is b (1/M each) and the loss is exactly 1.
    feats = torch.zeros(1, 1, 4)
    prompts = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(5))
    loss, plan = ot_alignment_loss(feats, prompts)
    torch.testing.assert_close(plan[0, 0], torch.full((3,), 1 / 3))
    assert loss.item() == pytest.approx(1.0, abs=1e-6)


def test_ot_loss_rejects_mismatched_map_sizes():
    with pytest.raises(ValueError, match="mapping MLP"):
        ot_alignment_loss(torch.randn(2, 3, 5), torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="grad"):
        ot_alignment_loss(torch.randn(2, 3, 5), torch.randn(2, 4, 5), grad="implicit")


def _lico_reference_plan(cost: torch.Tensor, reg: float, max_iter: int, tol: float):
    """LICO's solver from its definition: log-domain, rows first, batch-mean L1 stop on f."""
    b, n, m = cost.shape
    log_u, log_v = math.log(1 / n), math.log(1 / m)
    f, g = torch.zeros(b, n, dtype=cost.dtype), torch.zeros(b, m, dtype=cost.dtype)
    it = 0
    while it < max_iter:
        it += 1
        f_old = f
        z = (-cost + f[:, :, None] + g[:, None, :]) / reg
        f = reg * (log_u - torch.logsumexp(z, dim=2)) + f
        z = (-cost + f[:, :, None] + g[:, None, :]) / reg
        g = reg * (log_v - torch.logsumexp(z, dim=1)) + g
        if (f - f_old).abs().sum(-1).mean() < tol:
            break
    return torch.exp((-cost + f[:, :, None] + g[:, None, :]) / reg), it


def test_ot_tol_uses_licos_batch_mean_potential_stop_rule():
    gen = torch.Generator().manual_seed(5)
    feats = torch.randn(4, 6, 5, generator=gen, dtype=torch.float64)
    prompts = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)
    cost = torch.cdist(torch.nn.functional.normalize(feats, dim=-1),
                       torch.nn.functional.normalize(prompts, dim=-1)) ** 2  # fmt: skip
    for tol in (1e-1, 1e-2, 1e-3):
        _, plan = ot_alignment_loss(feats, prompts, replace(LICO_SOLVER, tol=tol))
        ref, iters = _lico_reference_plan(cost, 0.1, 100, tol)
        assert 1 < iters < 100  # the rule, not max_iter, stopped it
        # the loss solves in fp32 (OT in fp32): agreement to fp32 rounding of the plan
        torch.testing.assert_close(plan.double(), ref, rtol=0, atol=1e-6)
    # The engine's default rule (per-problem mean change of e^f) stops elsewhere: another plan.
    from ramlico.ot import sinkhorn

    other = sinkhorn(cost, None, None, 0.1, max_iter=100, tol=1e-1, warn=False).plan
    ref, _ = _lico_reference_plan(cost, 0.1, 100, 1e-1)
    assert (other - ref).abs().max() > 1e-4
    # A tolerance missed within max_iter is not a warning per step (SinkhornWarning is an error).
    ot_alignment_loss(feats, prompts, replace(LICO_SOLVER, max_iter=2, tol=1e-12))
