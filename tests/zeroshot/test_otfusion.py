"""Tests of ramlico.zeroshot.otfusion  on a generated problem."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as tf

from ramlico.metrics.functional import topk_accuracy
from ramlico.ot import SolverOptions
from ramlico.zeroshot.otfusion import (
    OTFUSION_SOLVER,
    fuse_scores,
    gaussian_log_likelihood,
    init_class_means,
    m_step,
    ot_assignment,
    otfusion_predict,
)

F64 = torch.float64
K, N_PER = 5, 60
# The generated CLIP cosine gaps are ~0.1 (real CLIP: ~0.01-0.03), so the real logit scale 100 would
# make the noisy prior near one-hot; 20 gives a real-CLIP-like soft prior (~55% top-1).
LOGIT_SCALE = 20.0


def _problem(seed: int = 0, d: int = 32, e: int = 64):
    """K=5 classes, N=300. CLIP image = [visual cluster part | weak noisy text-aligned part];
    text embeddings live in the second part only, so the CLIP prior is noisy (~55% top-1) while
    both the CLIP-image and the DINO features cluster by class (noise norm ~0.3-0.5 vs 1)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    y = torch.arange(K).repeat_interleave(N_PER)
    t = tf.normalize(r(K, d), dim=1)
    text = torch.cat([torch.zeros(K, d, dtype=F64), t], 1)
    clip_struct = tf.normalize(r(K, d), dim=1)[y] + 0.3 * r(len(y), d) / d**0.5
    clip_text_part = 0.3 * (0.2 * t[y] + r(len(y), d) / d**0.5)
    image = torch.cat([clip_struct, clip_text_part], 1)
    dino = tf.normalize(r(K, e), dim=1)[y] + 0.5 * r(len(y), e) / e**0.5
    return image, text, dino, y


def test_otfusion_beats_clip_prior():
    image, text, dino, y = _problem()
    res = otfusion_predict(image, text, dino, logit_scale=LOGIT_SCALE, labels=y)
    clip_acc = topk_accuracy(res.clip_prior, y, 1).item()
    fused_acc = topk_accuracy(res.probs, y, 1).item()
    assert 45.0 <= clip_acc <= 65.0  # the generator's intended regime (measured 55.3)
    assert fused_acc >= clip_acc + 15.0  # measured 100.0
    assert res.round_accuracy[-1].item() == pytest.approx(fused_acc)
    assert torch.equal(res.predictions, res.probs.argmax(1))
    assert res.round_predictions.shape == (9, K * N_PER)
    assert torch.allclose(res.round_fusion_weights, torch.full((9, 2), 0.5, dtype=F64))


def test_last_plan_marginals():
    image, text, dino, y = _problem()
    res = otfusion_predict(image, text, dino, logit_scale=LOGIT_SCALE)
    n = K * N_PER
    # Rows: the sample step is last (cols_first), so rows sum to 1 up to float64 rounding.
    assert torch.allclose(res.probs.sum(1), torch.ones(n, dtype=F64), atol=1e-12)
    assert torch.equal(res.round_class_mass[-1], res.probs.sum(0))
    # Classes: after only 4 iterations the class step is undone partly by the final row step, so
    # the masses are only near N pi = 60 (partial balancing). On this balanced,
    # well-separated problem the assignment is near-hard and correct, so masses are within 5%.
    assert torch.allclose(res.probs.sum(0), torch.full((K,), n / K, dtype=F64), rtol=0.05)


def test_ot_assignment_converges_to_class_prior():
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(40, 4, generator=g, dtype=F64)
    pi = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    q = ot_assignment(scores, pi, replace(OTFUSION_SOLVER, reg=0.1, max_iter=2000))
    # Converged: rows exact (last step), class masses N pi to the float64 iteration tolerance.
    assert torch.allclose(q.sum(1), torch.ones(40, dtype=F64), atol=1e-12)
    assert torch.allclose(q.sum(0), 40 * pi, atol=1e-6)


def test_ot_assignment_matches_swav_reference():
    """4 iterations equal the reference SwAV scaling loop (row-max shift, classes first)."""
    g = torch.Generator().manual_seed(2)
    scores = 0.1 * torch.rand(30, 6, generator=g, dtype=F64)  # |F/eps| <= 10: no underflow
    eps, n, k = 0.01, 30, 6
    pi = torch.full((k,), 1.0 / k, dtype=F64)
    ref = torch.exp((scores - scores.amax(1, keepdim=True)) / eps)
    ref = ref / ref.sum()
    for _ in range(4):
        ref = ref / ref.sum(0, keepdim=True) * pi
        ref = ref / ref.sum(1, keepdim=True) / n
    got = ot_assignment(scores, pi, replace(OTFUSION_SOLVER, reg=eps, max_iter=4))
    assert torch.allclose(got, n * ref, atol=1e-12)


def test_building_blocks_match_direct_formulas():
    g = torch.Generator().manual_seed(3)
    x = tf.normalize(torch.randn(20, 7, generator=g, dtype=F64), dim=1)
    mu = tf.normalize(torch.randn(4, 7, generator=g, dtype=F64), dim=1)
    var = torch.rand(7, generator=g, dtype=F64) + 0.1
    # log-likelihood: expansion (chunked) == direct (N, K, d) sum
    direct = -0.5 * ((x[:, None, :] - mu[None]) ** 2 / var).sum(-1)
    assert torch.allclose(gaussian_log_likelihood(x, mu, var, chunk_size=6), direct, atol=1e-12)
    # fused score: sum_s w_s P_s + lambda Y
    y_prior, p1, p2 = (torch.softmax(torch.randn(20, 4, generator=g, dtype=F64), 1) for _ in "abc")
    w = torch.tensor([0.3, 0.7], dtype=F64)
    fused = fuse_scores(y_prior, [p1, p2], w, 0.85)
    assert torch.allclose(fused, 0.3 * p1 + 0.7 * p2 + 0.85 * y_prior, atol=1e-15)
    # M-step: explicit weighted formulas with the new means
    q = torch.softmax(torch.randn(20, 4, generator=g, dtype=F64), 1)
    means, new_var = m_step(x, q)
    mean_ref = tf.normalize((q.T @ x) / q.sum(0)[:, None], dim=1)
    var_ref = (q[:, :, None] * (x[:, None, :] - mean_ref[None]) ** 2).sum((0, 1)) / q.sum()
    assert torch.allclose(means, mean_ref, atol=1e-12)
    assert torch.allclose(new_var, var_ref, atol=1e-12)
    # top-k initialisation == per-class loop
    init = init_class_means(x, q, top_k=3)
    for k in range(4):
        idx = q[:, k].argsort(descending=True)[:3]
        ref = tf.normalize((q[idx, k, None] * x[idx]).sum(0), dim=0)
        assert torch.allclose(init[k], ref, atol=1e-12)


def test_deterministic_and_sample_permutation_equivariant():
    image, text, dino, _ = _problem(seed=4)
    a = otfusion_predict(image, text, dino, logit_scale=LOGIT_SCALE, rounds=3)
    b = otfusion_predict(image, text, dino, logit_scale=LOGIT_SCALE, rounds=3)
    assert torch.equal(a.probs, b.probs)
    perm = torch.randperm(len(image), generator=torch.Generator().manual_seed(0))
    c = otfusion_predict(image[perm], text, dino[perm], logit_scale=LOGIT_SCALE, rounds=3)
    assert torch.allclose(c.probs, a.probs[perm], atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rounds=0), "rounds"),
        (dict(gmm_temperature=-1.0), "gmm_temperature"),
        (dict(class_prior="balanced"), "class_prior"),
        (dict(class_prior=torch.ones(3, dtype=F64)), "class_prior"),
        (dict(fusion_weights=[1.0]), "fusion_weights"),
        (dict(sources=("dinov3",)), "sources"),
        (dict(init_top_k=301), "init_top_k"),
        (dict(labels=torch.zeros(7, dtype=torch.long)), "labels"),
    ],
)
def test_bad_options_raise(kwargs, match):
    image, text, dino, _ = _problem()
    with pytest.raises(ValueError, match=match):
        otfusion_predict(image, text, dino, **kwargs)


def test_solver_settings_are_one_solver_options():
    image, text, dino, _ = _problem()
    with pytest.raises(TypeError, match="solver must be a ramlico.ot.SolverOptions"):
        otfusion_predict(image, text, dino, solver={"reg": 0.01})
    with pytest.raises(TypeError, match="unexpected keyword argument 'eps'"):
        otfusion_predict(image, text, dino, eps=0.01)
    # The preset is v1's step: eps 0.01, 4 iterations, class step first, pure log domain.
    assert OTFUSION_SOLVER == SolverOptions(
        reg=0.01, max_iter=4, tol=None, order="cols_first", stop_metric="plan_max_abs",
        check_every=None,
    )  # fmt: skip


def test_solver_tol_stops_the_assignment_early_at_the_same_fixed_point():
    """[E2]: tol on plan_max_abs, checked every iteration, stops long before max_iter with the
    plan of the converged problem (to the tolerance)."""
    g = torch.Generator().manual_seed(4)
    scores = torch.rand(40, 4, generator=g, dtype=F64)
    pi = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    converged = ot_assignment(scores, pi, replace(OTFUSION_SOLVER, reg=0.1, max_iter=2000))
    early = replace(OTFUSION_SOLVER, reg=0.1, max_iter=2000, tol=1e-9, check_every=1)
    torch.testing.assert_close(ot_assignment(scores, pi, early), converged, rtol=0, atol=1e-6)


def test_bad_shapes_raise():
    image, text, dino, _ = _problem()
    with pytest.raises(ValueError, match="clip_text dim"):
        otfusion_predict(image, text[:, :10], dino)
    with pytest.raises(ValueError, match="dino must have 300 rows"):
        otfusion_predict(image, text, dino[:10])
    with pytest.raises(ValueError, match="dino=None"):
        otfusion_predict(image, text, None)
    with pytest.raises(ValueError, match="2-D"):
        otfusion_predict(image[0], text, dino)
    bad = image.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        otfusion_predict(bad, text, dino)


def test_unconstrained_assignment_is_row_softmax():
    scores = torch.rand(12, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    q = ot_assignment(scores, None, replace(OTFUSION_SOLVER, reg=0.05))
    assert torch.allclose(q, torch.softmax(scores / 0.05, dim=1), atol=1e-15)


def test_options_adaptive_em_and_fp32():
    image, text, dino, y = _problem()
    res = otfusion_predict(
        image, text, dino, logit_scale=LOGIT_SCALE, fusion_weights="adaptive", class_prior="em",
        labels=y,
    )  # fmt: skip
    w = res.round_fusion_weights
    assert torch.allclose(w[0], torch.full((2,), 0.5, dtype=F64))  # adaptive starts uniform
    assert torch.allclose(w.sum(1), torch.ones(9, dtype=F64), atol=1e-12)
    assert res.round_accuracy[-1].item() >= 90.0  # measured 100.0, same regime as the default
    # fp32 inputs stay fp32 and give the fp64 labels on this well-separated problem
    f32 = otfusion_predict(image.float(), text.float(), dino.float(), logit_scale=LOGIT_SCALE)
    f64 = otfusion_predict(image, text, dino, logit_scale=LOGIT_SCALE)
    assert f32.probs.dtype == torch.float32
    assert torch.equal(f32.predictions, f64.predictions)
