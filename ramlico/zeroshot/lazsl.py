"""LaZSL scoring on precomputed CLIP features: crops, vision selection, hybrid cost, OT scores.

For every image ``b`` and class ``k`` LaZSL solves (docs/zero_shot.md, "LaZSL transport")::

    S*_{ij} = theta <p^l_i, q^k_j> + (1 - theta) <p^g, q^k_j>          hybrid similarity
    C*      = 1 - S*                                                     hybrid cost
    T       = argmin_T <T, C*> - reg H(T)  s.t. T 1 = r*, T^T 1 = 1/M_k   entropic OT
    psi_bk  = sum_ij T_ij S*_ij                                          class score

with ``p^g`` the global view, ``p^l_i`` the ``N`` crop embeddings, ``q^k_j`` the class's ``M_k``
descriptor embeddings (all L2-normalised) and ``r*`` the vision-selection marginal (uniform over
crops at least as similar to the global view as the image's mean, zero elsewhere). All ``B x K``
problems go to one :func:`ramlico.ot.sinkhorn` call (docs/sinkhorn.md, LaZSL preset).

Reference: Chen, Duan, Khan, Khan, "Interpretable Zero-Shot Learning with Locally-Aligned
Vision-Language Model", ICCV 2025, Eq. 2, 6-17; code ``shiming-chen/LaZSL`` (``OP.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ramlico.ot import OTResult, SolverOptions, sinkhorn

__all__ = [
    "LAZSL_SOLVER",
    "LaZSLExplanation",
    "clip_scores",
    "crop_heatmap",
    "crop_heatmaps",
    "dclip_scores",
    "explain",
    "hybrid_similarity",
    "lazsl_contributions",
    "lazsl_scores",
    "mean_text_classifier",
    "sample_crops",
    "vision_selection_marginal",
]

Tensor = torch.Tensor
#: LaZSL's Sinkhorn settings (docs/sinkhorn.md; reference ``OP.py``): eps 0.1, rows
#: first, at most 100 iterations, each problem stops when ``mean_i |u_new - u_old| < 1e-2``.
LAZSL_SOLVER = SolverOptions(
    reg=0.1, max_iter=100, tol=1e-2, order="rows_first", stop_metric="scaling_l1_mean",
    stop_rule="per_problem",
)  # fmt: skip


def sample_crops(
    width: int,
    height: int,
    num_crops: int = 90,
    *,
    scale: tuple[float, float] = (0.6, 0.9),
    seed: int = 1,
    index: int = 0,
) -> Tensor:
    """Seeded random square crop boxes of an image (LaZSL Eq. 2).

    Per crop: ``gamma ~ U(scale)``, side ``s = floor(gamma * min(W, H))`` on the original image,
    top-left uniform in ``{0..H-s} x {0..W-s}``. The generator is seeded from ``(seed, index)``
    (``index`` = the image's dataset index), so boxes do not depend on batching or workers.

    Args:
        width, height: image size in pixels (``>= 1``).
        num_crops: ``N``.
        scale: ``(alpha, beta)``, ``0 < alpha <= beta <= 1``.
        seed: global seed; index: per-image index mixed into the seed.

    Returns:
        ``(N, 4)`` int64 boxes ``(x1, y1, x2, y2)``, ``x2 = x1 + s`` exclusive, so
        ``img[..., y1:y2, x1:x2]`` is the crop (also valid boxes for ``torchvision.ops.roi_align``).

    Raises:
        ValueError: bad sizes or scale range.
    """
    if width < 1 or height < 1 or num_crops < 1:
        raise ValueError(
            f"width, height and num_crops must be >= 1, got {width}, {height}, {num_crops}"
        )
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < alpha <= beta <= 1, got {scale!r}")
    gen = torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63))
    gamma = lo + (hi - lo) * torch.rand(num_crops, generator=gen, dtype=torch.float64)
    side = (gamma * min(width, height)).floor().long().clamp_min(1)
    top = (torch.rand(num_crops, generator=gen, dtype=torch.float64) * (height - side + 1)).long()
    left = (torch.rand(num_crops, generator=gen, dtype=torch.float64) * (width - side + 1)).long()
    return torch.stack([left, top, left + side, top + side], dim=-1)


def vision_selection_marginal(
    crop_feats: Tensor, global_feat: Tensor, *, offset: float = 0.0
) -> Tensor:
    """Vision-selection row marginal ``r*`` (LaZSL Eq. 6-9).

    ``s_i = <p^l_i, p^g>``, ``delta = mean_i s_i + offset``; ``r*_i = 1/|P_pos|`` if
    ``s_i >= delta`` else 0. With ``offset=0`` at least one crop is always kept.

    Args:
        crop_feats: ``(B, N, D)`` normalised crop embeddings.
        global_feat: ``(B, D)`` normalised global embeddings.
        offset: ``gamma_off`` added to the mean (0 in the reference).

    Returns:
        ``(B, N)`` marginal, rows sum to 1, zeros on rejected crops.

    Raises:
        ValueError: an image keeps no crop (only possible with ``offset > 0``).
    """
    sim = torch.einsum("bnd,bd->bn", crop_feats, global_feat)
    keep = sim >= sim.mean(dim=-1, keepdim=True) + offset
    count = keep.sum(dim=-1, keepdim=True)
    if bool((count == 0).any()):
        raise ValueError(f"offset={offset} rejects every crop of some image; use a smaller offset")
    return keep.to(sim.dtype) / count.to(sim.dtype)


def hybrid_similarity(
    global_feat: Tensor, crop_feats: Tensor, desc_feats: Tensor, *, theta: float = 0.8
) -> Tensor:
    """Hybrid similarity ``S* = theta P Q^T + (1 - theta) p^g Q^T`` (LaZSL Eq. 10, 16).

    Args:
        global_feat: ``(B, D)``; crop_feats: ``(B, N, D)``; desc_feats: ``(K, M, D)``.
        theta: region weight in ``[0, 1]``.

    Returns:
        ``(B, K, N, M)``; the cost is ``1 - S*``. Padded descriptor columns hold whatever the
        padding embedding gives (zeros give ``0``); mask them through the marginal.
    """
    local = torch.einsum("bnd,kmd->bknm", crop_feats, desc_feats)
    glob = torch.einsum("bd,kmd->bkm", global_feat, desc_feats)
    return theta * local + (1.0 - theta) * glob.unsqueeze(-2)


def _check_shapes(
    global_feat: Tensor, crop_feats: Tensor, desc_feats: Tensor, desc_mask: Tensor
) -> None:
    b, d = global_feat.shape
    if crop_feats.dim() != 3 or crop_feats.shape[0] != b or crop_feats.shape[2] != d:
        raise ValueError(f"crop_feats must be (B={b}, N, D={d}), got {tuple(crop_feats.shape)}")
    if desc_feats.dim() != 3 or desc_feats.shape[2] != d:
        raise ValueError(f"desc_feats must be (K, M, D={d}), got {tuple(desc_feats.shape)}")
    if desc_mask.shape != desc_feats.shape[:2] or desc_mask.dtype != torch.bool:
        raise ValueError(
            f"desc_mask must be bool {tuple(desc_feats.shape[:2])}, got {desc_mask.dtype} "
            f"{tuple(desc_mask.shape)}"
        )
    if not bool(desc_mask.any(dim=-1).all()):
        raise ValueError("every class needs at least one descriptor (use [''] for empty lists)")


def _row_marginal(global_feat: Tensor, crop_feats: Tensor, vision_selection: bool) -> Tensor:
    if vision_selection:
        return vision_selection_marginal(crop_feats, global_feat)
    n = crop_feats.shape[1]
    return crop_feats.new_full(crop_feats.shape[:2], 1.0 / n)


def _problems(
    global_feat: Tensor, crop_feats: Tensor, desc_feats: Tensor, desc_mask: Tensor,
    vision_selection: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Checked inputs in the math dtype (fp32, or fp64 for fp64) and the log-marginals.

    Returns ``(global (B, D), crops (B, N, D), descriptors (K, M_max, D), log_a (B, 1, N),
    log_b (K, M_max))``: ``a = r*`` (or uniform), ``b = 1/M_k`` on real descriptors, ``-inf``
    on padding.
    """
    _check_shapes(global_feat, crop_feats, desc_feats, desc_mask)
    dtype = torch.promote_types(global_feat.dtype, torch.float32)
    g, p, q = (x.to(dtype) for x in (global_feat, crop_feats, desc_feats))
    log_a = _row_marginal(g, p, vision_selection).log().unsqueeze(1)
    count = desc_mask.sum(dim=-1, keepdim=True).to(dtype)
    log_b = torch.where(desc_mask, (1.0 / count).log(), float("-inf")).to(dtype)
    return g, p, q, log_a, log_b


def _solve(
    sim: Tensor, log_a: Tensor, log_b: Tensor, solver: SolverOptions, output: str, warn: bool
) -> OTResult:
    """All problems in one engine call, cost ``1 - S*`` as the log-kernel ``(S* - 1) / reg``."""
    return sinkhorn(
        None,
        log_kernel=(sim - 1.0) / solver.reg,
        log_a=log_a,
        log_b=log_b,
        output=output,
        contract_with=sim if output == "contract" else None,
        warn=warn,
        **solver.solve_kwargs(),
    )


def lazsl_scores(
    global_feat: Tensor,
    crop_feats: Tensor,
    desc_feats: Tensor,
    desc_mask: Tensor,
    *,
    theta: float = 0.8,
    solver: SolverOptions = LAZSL_SOLVER,
    vision_selection: bool = True,
    class_chunk: int | None = None,
    warn: bool = True,
) -> Tensor:
    """LaZSL class scores ``psi (B, K)`` for every (image, class) pair (LaZSL Eq. 15).

    Problem per (b, k): ``min_T <T, 1 - S*> - reg H(T)``, ``T 1 = r*_b``, ``T^T 1 = 1/M_k`` on
    real descriptors; score ``psi_bk = sum_ij T_ij S*_ij``. Stopping (:data:`LAZSL_SOLVER`)
    follows the reference: per problem, after each (row, column) iteration,
    ``mean_i |u_new - u_old| < tol``, at most ``max_iter`` iterations (``tol=None``: exactly
    ``max_iter``). Math runs in fp32 (fp64 stays fp64); ``class_chunk`` changes the scores only
    by rounding.

    Args:
        global_feat: ``(B, D)`` normalised global-view embeddings.
        crop_feats: ``(B, N, D)`` normalised crop embeddings.
        desc_feats: ``(K, M_max, D)`` normalised descriptor embeddings (padding arbitrary).
        desc_mask: ``(K, M_max)`` bool, True on real descriptors.
        theta: hybrid weight (``1`` = no global term, the "hybrid off" ablation).
        solver: the Sinkhorn settings (:class:`ramlico.ot.SolverOptions`): ``reg`` is the
            entropic regulariser ``eps``; default :data:`LAZSL_SOLVER` (reference: 0.1, 100
            iterations, tol 1e-2).
        vision_selection: ``False`` = uniform row marginal (ablation).
        class_chunk: classes per engine call. ``None`` = all ``K`` in one call; memory is about
            4 tensors of ``B*K*N*M_max`` floats, so chunk for large ``B*K`` (e.g. 128 for ImageNet
            with ``B=32`` on a small GPU).
        warn: forward to the engine (warn when a problem misses ``tol`` in ``max_iter``).

    Returns:
        ``(B, K)`` scores in the input's float dtype (fp32 for half inputs).
    """
    global_feat, crop_feats, desc_feats, log_a, log_b = _problems(
        global_feat, crop_feats, desc_feats, desc_mask, vision_selection
    )
    k = desc_feats.shape[0]
    step = k if class_chunk is None else class_chunk
    if step < 1:
        raise ValueError(f"class_chunk must be >= 1 or None, got {class_chunk}")
    out = []
    for start in range(0, k, step):
        sl = slice(start, start + step)
        sim = hybrid_similarity(global_feat, crop_feats, desc_feats[sl], theta=theta)
        res = _solve(sim, log_a, log_b[sl].unsqueeze(0), solver, "contract", warn)
        out.append(res.require("contraction"))
    return torch.cat(out, dim=1)


def lazsl_contributions(
    global_feat: Tensor,
    crop_feats: Tensor,
    desc_feats: Tensor,
    desc_mask: Tensor,
    *,
    theta: float = 0.8,
    solver: SolverOptions = LAZSL_SOLVER,
    vision_selection: bool = True,
) -> Tensor:
    """Transport-weighted similarities ``T_ij S*_ij`` of every (image, class) problem.

    The problems of :func:`lazsl_scores` with the plan kept: summing the result over crops and
    descriptors gives ``psi``, over descriptors the crop contributions ``rho_i``, over crops the
    descriptor contributions ``w_j`` (:class:`LaZSLExplanation`, for all pairs at once).

    Returns:
        ``(B, K, N, M_max)``, zero on padded descriptors and rejected crops.
    """
    g, p, q, log_a, log_b = _problems(global_feat, crop_feats, desc_feats, desc_mask,
                                      vision_selection)  # fmt: skip
    sim = hybrid_similarity(g, p, q, theta=theta)
    plan = _solve(sim, log_a, log_b.unsqueeze(0), solver, "plan", warn=False).require("plan")
    return plan * sim


@dataclass
class LaZSLExplanation:
    """Transport-weighted contributions of one (image, class) pair (LaZSL Eq. 15-17).

    Attributes:
        score: scalar ``psi``.
        per_descriptor: ``(M_k,)`` ``w_j = sum_i T_ij S*_ij``; sums to ``score``.
        per_crop: ``(N,)`` ``rho_i = sum_j T_ij S*_ij``; zero on rejected crops.
        plan: ``(N, M_k)`` transport plan.
        similarity: ``(N, M_k)`` hybrid similarity ``S*``.
        row_marginal: ``(N,)`` ``r*``.
    """

    score: Tensor
    per_descriptor: Tensor
    per_crop: Tensor
    plan: Tensor
    similarity: Tensor
    row_marginal: Tensor


def explain(
    global_feat: Tensor,
    crop_feats: Tensor,
    desc_feats: Tensor,
    desc_mask: Tensor,
    class_index: int,
    *,
    theta: float = 0.8,
    solver: SolverOptions = LAZSL_SOLVER,
    vision_selection: bool = True,
    warn: bool = True,
) -> LaZSLExplanation:
    """Per-descriptor and per-crop contributions to ``psi`` for one image and class.

    Same problem and options as :func:`lazsl_scores` (its ``score`` equals that function's entry).

    Args:
        global_feat: ``(D,)``; crop_feats: ``(N, D)`` for one image.
        desc_feats, desc_mask: ``(K, M_max, D)`` and ``(K, M_max)`` as in :func:`lazsl_scores`.
        class_index: the class ``k`` to explain; padded columns are dropped from the output.

    Returns:
        :class:`LaZSLExplanation` (fp32 or fp64).
    """
    if global_feat.dim() != 1 or crop_feats.dim() != 2:
        raise ValueError(
            f"explain takes one image: global_feat (D,), crop_feats (N, D); got "
            f"{tuple(global_feat.shape)}, {tuple(crop_feats.shape)}"
        )
    if not 0 <= class_index < desc_feats.shape[0]:
        raise ValueError(f"class_index must be in [0, {desc_feats.shape[0]}), got {class_index}")
    real = desc_mask[class_index]
    feats = desc_feats[class_index][real].unsqueeze(0)
    mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
    _check_shapes(global_feat[None], crop_feats[None], feats, mask)
    dtype = torch.promote_types(global_feat.dtype, torch.float32)
    g, p, q = global_feat[None].to(dtype), crop_feats[None].to(dtype), feats.to(dtype)
    a = _row_marginal(g, p, vision_selection)
    log_b = q.new_full(q.shape[:2], -math.log(q.shape[1]))
    sim = hybrid_similarity(g, p, q, theta=theta)
    res = _solve(sim, a.log().unsqueeze(1), log_b.unsqueeze(0), solver, "plan", warn)
    plan, sim = res.require("plan")[0, 0], sim[0, 0]
    weighted = plan * sim
    return LaZSLExplanation(
        score=weighted.sum(),
        per_descriptor=weighted.sum(dim=0),
        per_crop=weighted.sum(dim=1),
        plan=plan,
        similarity=sim,
        row_marginal=a[0],
    )


def crop_heatmap(per_crop: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """Pixel heatmap of per-crop contributions (optional output).

    ``H(p) = sum_i rho_i 1[p in box_i] / max(1, #{i : p in box_i})``.

    Args:
        per_crop: ``(N,)`` contributions ``rho`` (e.g. :attr:`LaZSLExplanation.per_crop`).
        boxes: ``(N, 4)`` int boxes ``(x1, y1, x2, y2)``, exclusive ends (:func:`sample_crops`).
        height, width: image size.

    Returns:
        ``(height, width)`` heatmap in ``per_crop``'s dtype.
    """
    if boxes.shape != (per_crop.shape[0], 4):
        raise ValueError(f"boxes must be (N={per_crop.shape[0]}, 4), got {tuple(boxes.shape)}")
    return crop_heatmaps(per_crop[:, None], boxes, height, width)[0]


def crop_heatmaps(per_crop: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """:func:`crop_heatmap` for ``C`` weightings of the same crops at once.

    Args:
        per_crop: ``(N, C)`` contributions; boxes: ``(N, 4)`` as in :func:`crop_heatmap`.

    Returns:
        ``(C, height, width)``.
    """
    ys = torch.arange(height, device=boxes.device)
    xs = torch.arange(width, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(-1)
    in_y = (ys[None] >= y1[:, None]) & (ys[None] < y2[:, None])  # (N, H)
    in_x = (xs[None] >= x1[:, None]) & (xs[None] < x2[:, None])  # (N, W)
    inside = (in_y[:, :, None] & in_x[:, None, :]).to(per_crop.dtype)  # (N, H, W)
    total = torch.einsum("nc,nhw->chw", per_crop, inside)
    return total / inside.sum(dim=0).clamp_min(1.0)


def clip_scores(global_feat: Tensor, class_feats: Tensor) -> Tensor:
    """CLIP zero-shot scores ``<p^g, t_k>`` (the CLIP baseline).

    Args:
        global_feat: ``(B, D)`` normalised image embeddings.
        class_feats: ``(K, D)`` normalised class text embeddings (single template, or a
            :func:`mean_text_classifier` for CLIP-E / CuPL).

    Returns:
        ``(B, K)`` cosine similarities.
    """
    return global_feat @ class_feats.T


def mean_text_classifier(text_feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """CLIP-E / CuPL classifier ``t_k = normalize(mean_j normalize(e_kj))``.

    Args:
        text_feats: ``(K, M, D)`` text embeddings (any norm; each is normalised first).
        mask: ``(K, M)`` bool, True on real sentences (``None`` = all real).

    Returns:
        ``(K, D)`` unit-norm class embeddings.
    """
    feats = torch.nn.functional.normalize(text_feats, dim=-1)
    if mask is not None:
        feats = feats * mask.unsqueeze(-1).to(feats.dtype)
    return torch.nn.functional.normalize(feats.sum(dim=1), dim=-1)


def dclip_scores(global_feat: Tensor, desc_feats: Tensor, desc_mask: Tensor) -> Tensor:
    """DCLIP scores: mean cosine over the class's descriptor sentences.

    ``score_bk = (1/M_k) sum_j <p^g_b, q^k_j>`` over real descriptors (the dot product with the
    un-renormalised mean embedding). Also WaffleCLIP's score, given its random descriptors.

    Args:
        global_feat: ``(B, D)``; desc_feats: ``(K, M_max, D)``; desc_mask: ``(K, M_max)`` bool.

    Returns:
        ``(B, K)``.
    """
    m = desc_mask.to(desc_feats.dtype)
    sims = torch.einsum("bd,kmd->bkm", global_feat, desc_feats) * m
    return sims.sum(dim=-1) / m.sum(dim=-1)
