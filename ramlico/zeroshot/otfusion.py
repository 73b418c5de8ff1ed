"""OTFusion: training-free transductive zero-shot fusion of CLIP and DINOv2 via optimal transport.

Pure functions on precomputed features (``docs/zero_shot.md``, "OTFusion"). The whole
unlabelled test set of ``N`` images is labelled at once::

    Y = softmax_k(100 * Xc W^T)                                  CLIP prior          (N, K)
    mu_s, var_s = top-8 init from Y                              per visual source s
    repeat R rounds:
        l_s[i,k] = -1/2 sum_d (x_s[i,d] - mu_s[k,d])^2 / var_s[d] Gaussian log-lik   (N, K)
        P_s = softmax_k(l_s / T_g)                               GMM posterior       (N, K)
        F = sum_s w_s P_s + lambda Y                             fused score         (N, K)
        Q = N * argmin_{T in Pi(1/N, pi)} <T, -F> - eps H(T)     OT assignment       (N, K)
        mu_s, var_s = M-step(X_s, Q)                             weighted ML
    prediction = argmax_k Q  (Q of the last round, before its M-step)

Sources are ``"clip_image"`` (CLIP image embeddings) and ``"dinov2"`` (DINOv2 CLS embeddings).
The Sinkhorn step is the shared engine :func:`ramlico.ot.sinkhorn` with the OTFusion preset
(``docs/sinkhorn.md``). Reference: Xu et al., "OTFusion: Bridging
Vision-only and Vision-Language Models via Optimal Transport for Transductive Zero-Shot
Learning", arXiv 2506.13723 v1 (2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as tf

from ramlico.ot import SolverOptions, sinkhorn

__all__ = [
    "OTFUSION_SOLVER",
    "OTFusionResult",
    "clip_prior",
    "fuse_scores",
    "gaussian_log_likelihood",
    "gmm_posterior",
    "init_class_means",
    "m_step",
    "ot_assignment",
    "otfusion_predict",
]

Tensor = torch.Tensor
SOURCES = ("clip_image", "dinov2")
CLASS_PRIORS = ("uniform", "clip_mean", "em", "none")
_VAR_FLOOR = 1e-8  # clamp sigma_d >= 1e-8
#: OTFusion v1's Sinkhorn step (docs/sinkhorn.md): eps 0.01, exactly 4 log-domain
#: iterations, class (column) step first. ``tol`` (the OTFusion code's later rule, e.g. 1e-5)
#: stops early on ``plan_max_abs``; give it ``check_every=1`` to test it after every iteration.
OTFUSION_SOLVER = SolverOptions(
    reg=0.01, max_iter=4, tol=None, order="cols_first", stop_metric="plan_max_abs",
    check_every=None,
)  # fmt: skip


@dataclass
class OTFusionResult:
    """What :func:`otfusion_predict` returns.

    Attributes:
        probs: ``(N, K)`` soft labels ``Q`` of the last round (rows sum to 1).
        predictions: ``(N,)`` int64, ``argmax_k Q``.
        clip_prior: ``(N, K)`` CLIP zero-shot posterior ``Y`` (the CLIP-only baseline).
        round_predictions: ``(R, N)`` int64, ``argmax_k Q`` after each round's OT step.
        round_class_mass: ``(R, K)`` soft class masses ``sum_i Q_ik`` of each round.
        round_fusion_weights: ``(R, |S|)`` source weights ``w_s`` used in each round.
        round_accuracy: ``(R,)`` top-1 accuracy in percent per round when ``labels`` were given
            (logging only: labels never influence ``Q``), else ``None``.
    """

    probs: Tensor
    predictions: Tensor
    clip_prior: Tensor
    round_predictions: Tensor
    round_class_mass: Tensor
    round_fusion_weights: Tensor
    round_accuracy: Tensor | None = None


def _check_matrix(name: str, x: Tensor, rows: int | None = None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D floating tensor, got {got}")
    if rows is not None and x.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows (one per test image), got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf; clean the cached features")


def clip_prior(clip_image: Tensor, clip_text: Tensor, logit_scale: float = 100.0) -> Tensor:
    """CLIP zero-shot posterior ``Y = softmax_k(logit_scale * Xc W^T)``.

    Args:
        clip_image: ``(N, D)`` CLIP image embeddings (L2-normalised here).
        clip_text: ``(K, D)`` class text embeddings (L2-normalised here).
        logit_scale: CLIP's fixed logit scale (OpenAI: 100).

    Returns:
        ``(N, K)`` posterior, rows sum to 1.
    """
    logits = tf.normalize(clip_image, dim=-1) @ tf.normalize(clip_text, dim=-1).T
    return torch.softmax(logits.mul_(logit_scale), dim=1)


def init_class_means(features: Tensor, prior: Tensor, top_k: int = 8) -> Tensor:
    """Initial class means from the ``top_k`` most prior-confident samples per class.

    ``mu_k = normalize(sum_{i in top_k(Y[:, k])} Y_ik x_i)``, vectorised: top-k over the sample
    axis gives ``(top_k, K)`` indices; features are gathered to ``(top_k, K, d)``.

    Args:
        features: ``(N, d)`` embeddings of one source.
        prior: ``(N, K)`` class scores ``Z0`` (the CLIP prior).
        top_k: samples per class, ``1 <= top_k <= N``.

    Returns:
        ``(K, d)`` unit-norm class means.
    """
    if not 1 <= top_k <= features.shape[0]:
        raise ValueError(f"init_top_k must be in [1, N={features.shape[0]}], got {top_k}")
    weight, index = prior.topk(top_k, dim=0)  # (top_k, K)
    picked = features[index]  # (top_k, K, d)
    return tf.normalize((weight.unsqueeze(-1) * picked).sum(0), dim=-1)


def gaussian_log_likelihood(
    features: Tensor, means: Tensor, var: Tensor, chunk_size: int = 8192
) -> Tensor:
    """Shared-diagonal Gaussian log-likelihood without ``(N, K, d)`` tensors.

    ``l_ik = -1/2 sum_d (x_id - mu_kd)^2 / var_d``
    ``     = -1/2 [ (x_i^2) . a - 2 x_i . (mu_k * a) + (mu_k^2) . a ]``,  ``a = 1 / var``.
    Class-independent terms (log-determinant, mixing weights) are omitted, as in the reference.

    Args:
        features: ``(N, d)``.
        means: ``(K, d)``.
        var: ``(d,)`` shared diagonal variance, ``> 0``.
        chunk_size: rows per matmul block (bounds the temporaries to ``chunk_size x K``).

    Returns:
        ``(N, K)`` log-likelihoods.
    """
    a = 1.0 / var
    weighted_means = means * a  # (K, d)
    mean_term = (means * weighted_means).sum(-1)  # (K,)
    out = features.new_empty(features.shape[0], means.shape[0])
    for start in range(0, features.shape[0], chunk_size):
        x = features[start : start + chunk_size]
        block = torch.addmm(mean_term.unsqueeze(0), x, weighted_means.T, alpha=-2.0)
        block.add_(((x * x) @ a).unsqueeze(1))
        out[start : start + chunk_size] = block.mul_(-0.5)
    return out


def gmm_posterior(
    features: Tensor, means: Tensor, var: Tensor, temperature: float = 50.0
) -> Tensor:
    """Class posterior ``P = softmax_k(l / T_g)`` of the shared-variance Gaussian model.

    Returns:
        ``(N, K)``, rows sum to 1.
    """
    log_lik = gaussian_log_likelihood(features, means, var)
    return torch.softmax(log_lik.div_(temperature), dim=1)


def m_step(features: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted maximum-likelihood update of one source's Gaussian model.

    ``mu_k = normalize(sum_i Q_ik x_i / sum_i Q_ik)`` and, with the new ``mu``,
    ``var_d = [sum_i q_i x_id^2 - 2 sum_k mu_kd (Q^T X)_kd + sum_k n_k mu_kd^2] / sum Q``
    where ``q_i = sum_k Q_ik`` and ``n_k = sum_i Q_ik``; ``var_d`` is clamped at 1e-8.

    Args:
        features: ``(N, d)``.
        q: ``(N, K)`` soft assignment.

    Returns:
        ``(means (K, d), var (d,))``.
    """
    qtx = q.T @ features  # (K, d)
    means = tf.normalize(qtx, dim=-1)
    row_mass, class_mass = q.sum(1), q.sum(0)
    sq = row_mass @ (features * features)  # (d,)
    var = sq - 2 * (means * qtx).sum(0) + class_mass @ (means * means)
    return means, (var / row_mass.sum()).clamp_min(_VAR_FLOOR)


def fuse_scores(
    prior: Tensor, posteriors: Sequence[Tensor], weights: Tensor, text_weight: float
) -> Tensor:
    """Fused score ("negative cost") ``F = sum_s w_s P_s + lambda Y``.

    Args:
        prior: ``(N, K)`` CLIP posterior ``Y``.
        posteriors: ``|S|`` tensors ``(N, K)``, one per visual source.
        weights: ``(|S|,)`` source weights ``w_s``.
        text_weight: ``lambda``.

    Returns:
        ``(N, K)`` new tensor.
    """
    fused = prior * text_weight
    for w, p in zip(weights.tolist(), posteriors, strict=True):
        fused.add_(p, alpha=w)
    return fused


def ot_assignment(
    scores: Tensor, class_prior: Tensor | None, solver: SolverOptions = OTFUSION_SOLVER
) -> Tensor:
    """Entropic-OT label assignment ``Q = N T*`` (docs/sinkhorn.md).

    ``T* = argmin_{T 1 = 1/N, T^T 1 = pi} <T, -F> - eps H(T)``, solved by the shared engine with
    ``solver`` (:data:`OTFUSION_SOLVER`: log domain, class (column) step first, sample (row) step
    last so every row of ``Q`` sums to 1 exactly), starting from the row potentials
    ``-max_k F_ik / eps`` (SwAV's row-max shift, which changes the result at a finite iteration
    count). With ``class_prior=None`` the class constraint is skipped: ``Q = softmax_k(F / eps)``
    (the "no OT" ablation).

    Args:
        scores: ``(N, K)`` fused scores ``F`` (not modified).
        class_prior: ``(K,)`` class marginal ``pi`` summing to 1, or ``None``.
        solver: the Sinkhorn settings: ``reg`` is ``eps``, ``max_iter`` the iterations
            (OTFusion v1: 4); ``tol=None`` runs exactly ``max_iter``, else it stops early when
            the mass-1 plan moves by less than ``tol`` (``plan_max_abs``, the code's later rule);
            reaching ``max_iter`` first is the intended cap there, so no warning is raised.

    Returns:
        ``(N, K)`` soft assignment, rows sum to 1, class totals ``~ N pi``.
    """
    log_kernel = scores / solver.reg
    if class_prior is None:
        return torch.softmax(log_kernel, dim=1)
    row_init = -log_kernel.amax(1)
    res = sinkhorn(
        None, None, class_prior.to(scores.dtype), log_kernel=log_kernel,
        init=(row_init, None), output_scale="row_stochastic", warn=False,
        **solver.solve_kwargs(),
    )  # fmt: skip
    return res.require("plan")


def _check_options(rounds: int, text_weight: float, temperature: float) -> None:
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r} (OTFusion v1 uses 9)")
    if not text_weight >= 0:
        raise ValueError(f"text_weight must be >= 0, got {text_weight!r} (default 0.85)")
    if not temperature > 0:
        raise ValueError(f"gmm_temperature must be > 0, got {temperature!r} (default 50)")


def _check_inputs(clip_image: Tensor, clip_text: Tensor, labels: Tensor | None) -> int:
    """Validate the CLIP features and optional labels; return ``N``."""
    _check_matrix("clip_image", clip_image)
    n = clip_image.shape[0]
    _check_matrix("clip_text", clip_text)
    if clip_text.shape[1] != clip_image.shape[1]:
        raise ValueError(
            f"clip_text dim {clip_text.shape[1]} != clip_image dim {clip_image.shape[1]}; both "
            "must come from the same CLIP model"
        )
    if labels is not None and (labels.shape != (n,) or labels.is_floating_point()):
        raise ValueError(
            f"labels must be an integer tensor of shape ({n},), got {tuple(labels.shape)}"
        )
    return n


def _source_features(
    sources: Sequence[str], clip_image: Tensor, dino: Tensor | None, n: int
) -> list[Tensor]:
    """The L2-normalised feature matrix of each requested visual source."""
    if len(set(sources)) != len(sources) or any(s not in SOURCES for s in sources):
        raise ValueError(f"sources must be distinct names from {SOURCES}, got {tuple(sources)}")
    feats = []
    for s in sources:
        if s == "dinov2":
            if dino is None:
                raise ValueError("sources contains 'dinov2' but dino=None; pass (N, E) features")
            _check_matrix("dino", dino, rows=n)
            feats.append(tf.normalize(dino, dim=-1))
        else:
            feats.append(clip_image)
    return feats


def _initial_weights(
    fusion_weights: Sequence[float] | str | None, n_sources: int, like: Tensor
) -> tuple[Tensor, bool]:
    """``(w (|S|,), adaptive)``: uniform, given, or adaptive (starts uniform)."""
    uniform = like.new_full((n_sources,), 1.0 / max(n_sources, 1))
    if fusion_weights is None or fusion_weights == "adaptive":
        return uniform, fusion_weights == "adaptive"
    if isinstance(fusion_weights, str):
        raise ValueError(
            f"fusion_weights must be None, 'adaptive' or floats, got {fusion_weights!r}"
        )
    w = torch.as_tensor(fusion_weights, dtype=like.dtype, device=like.device).reshape(-1)
    if w.numel() != n_sources or (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError(
            f"fusion_weights must be {n_sources} finite values >= 0 (one per source), got "
            f"{fusion_weights!r}"
        )
    return w, False


def _adaptive_weights(posteriors: Sequence[Tensor], pred: Tensor, like: Tensor) -> Tensor:
    """[E2] self-adaptive weights: ``w_s ~ #{i : argmax P_s_i = argmax Q_i}``, normalised."""
    agree = torch.stack([(p.argmax(1) == pred).sum() for p in posteriors]).to(like.dtype)
    total = agree.sum()
    return agree / total if total > 0 else like.new_full(agree.shape, 1.0 / len(posteriors))


def _class_marginal(class_prior: str | Tensor, prior: Tensor) -> tuple[Tensor | None, str]:
    """``(pi (K,) or None, mode)`` from the ``class_prior`` option."""
    k = prior.shape[1]
    if isinstance(class_prior, Tensor):
        pi = class_prior.to(prior)
        if pi.shape != (k,) or (pi < 0).any() or not torch.isfinite(pi).all() or pi.sum() <= 0:
            raise ValueError(f"class_prior tensor must be (K={k},) finite, >= 0, not all 0")
        return pi / pi.sum(), "fixed"
    if class_prior not in CLASS_PRIORS:
        raise ValueError(
            f"class_prior must be a (K,) tensor or one of {CLASS_PRIORS}, got {class_prior!r}"
        )
    if class_prior == "none":
        return None, "none"
    if class_prior == "clip_mean":
        mass = prior.sum(0)
        return mass / mass.sum(), "fixed"
    return prior.new_full((k,), 1.0 / k), class_prior


def _initial_var(features: Tensor) -> Tensor:
    """``var = 1/d`` in every dimension."""
    return features.new_full((features.shape[1],), 1.0 / features.shape[1])


def otfusion_predict(
    clip_image: Tensor,
    clip_text: Tensor,
    dino: Tensor | None,
    *,
    rounds: int = 9,
    solver: SolverOptions = OTFUSION_SOLVER,
    text_weight: float = 0.85,
    fusion_weights: Sequence[float] | str | None = None,
    sources: Sequence[str] = SOURCES,
    class_prior: str | Tensor = "uniform",
    gmm_temperature: float = 50.0,
    init_top_k: int = 8,
    logit_scale: float = 100.0,
    labels: Tensor | None = None,
) -> OTFusionResult:
    """Label a whole test set with OTFusion (docs/zero_shot.md, "OTFusion"; defaults = the paper's).

    Per round ``t = 1..rounds``: Gaussian posteriors ``P_s = softmax(l_s / T_g)`` for each visual
    source; fused score ``F = sum_s w_s P_s + lambda Y``; OT assignment
    ``Q = N argmin_{T in Pi(1/N, pi)} <T, -F> - eps H(T)`` (:func:`ot_assignment` with
    ``solver``: 4 log-domain iterations, class step first); M-step of every source's means and
    shared diagonal variance from ``Q``. The prediction is ``argmax_k Q`` of the last round.
    Deterministic, no autograd.
    Memory: a handful of ``N x K`` buffers (``Y``, ``F``, one ``P_s`` at a time, the engine's
    log-kernel and plan); nothing of size ``N x d x K``.

    Args:
        clip_image: ``(N, D)`` CLIP image embeddings (L2-normalised here).
        clip_text: ``(K, D)`` CLIP class text embeddings; ``K`` comes from here, never from labels.
        dino: ``(N, E)`` DINOv2 embeddings (L2-normalised here); may be ``None`` when
            ``"dinov2"`` is not in ``sources``.
        rounds: outer rounds ``R`` (9).
        solver: the OT step's Sinkhorn settings (:data:`OTFUSION_SOLVER`: ``reg`` = ``eps``
            0.01, ``max_iter`` 4, ``tol`` None; [E2]: ``tol=1e-5, check_every=1``).
        text_weight: ``lambda``, weight of the CLIP prior in ``F`` (0.85).
        fusion_weights: ``None`` = uniform ``1/|S|``; ``|S|`` floats; or ``"adaptive"`` ([E2]:
            after each OT step ``w_s`` is proportional to the agreement of ``argmax P_s`` with
            ``argmax Q``).
        sources: visual sources with a Gaussian model, subset of ``("clip_image", "dinov2")``;
            ``()`` = OTTER-style balanced OT on the CLIP prior alone.
        class_prior: ``"uniform"`` (``pi = 1/K``), ``"clip_mean"`` (``pi ~ sum_i Y_ik``),
            ``"em"`` (uniform start, then ``pi <- (pi + normalize(sum_i Q_ik)) / 2`` each round),
            ``"none"`` (no class constraint: ``Q = softmax(F / eps)``) or a ``(K,)`` tensor.
        gmm_temperature: ``T_g`` (50).
        init_top_k: samples per class for the initial means (8).
        logit_scale: CLIP logit scale (100).
        labels: optional ``(N,)`` int labels, only for ``round_accuracy``.

    Returns:
        :class:`OTFusionResult` (``probs (N, K)``, ``predictions (N,)``, per-round info).

    Raises:
        ValueError: bad shapes, non-finite features, unknown or out-of-range options.
    """
    n = _check_inputs(clip_image, clip_text, labels)
    _check_options(rounds, text_weight, gmm_temperature)
    if not isinstance(solver, SolverOptions):
        raise TypeError(f"solver must be a ramlico.ot.SolverOptions, got {type(solver).__name__}")
    with torch.no_grad():
        clip_image = tf.normalize(clip_image, dim=-1)
        feats = _source_features(sources, clip_image, dino, n)
        prior = clip_prior(clip_image, clip_text, logit_scale)
        weights, adaptive = _initial_weights(fusion_weights, len(feats), prior)
        pi, pi_mode = _class_marginal(class_prior, prior)
        models = [(init_class_means(x, prior, init_top_k), _initial_var(x)) for x in feats]
        history: dict[str, list[Tensor]] = {"pred": [], "mass": [], "w": []}
        for t in range(rounds):
            posteriors = [
                gmm_posterior(x, *model, gmm_temperature)
                for x, model in zip(feats, models, strict=True)
            ]
            fused = fuse_scores(prior, posteriors, weights, text_weight)
            q = ot_assignment(fused, pi, solver)
            del fused
            pred, mass = q.argmax(1), q.sum(0)
            history["pred"].append(pred)
            history["mass"].append(mass)
            history["w"].append(weights)
            if adaptive and feats:
                weights = _adaptive_weights(posteriors, pred, prior)
            del posteriors
            if pi_mode == "em" and pi is not None:
                pi = 0.5 * pi + 0.5 * mass / mass.sum()
            if t < rounds - 1:  # the prediction uses Q before the last round's M-step (2.5)
                models = [m_step(x, q) for x in feats]
    round_pred = torch.stack(history["pred"])
    acc = None
    if labels is not None:
        acc = 100.0 * (round_pred == labels.to(round_pred.device)).to(prior.dtype).mean(1)
    return OTFusionResult(
        probs=q, predictions=pred, clip_prior=prior, round_predictions=round_pred,
        round_class_mass=torch.stack(history["mass"]),
        round_fusion_weights=torch.stack(history["w"]), round_accuracy=acc,
    )  # fmt: skip
