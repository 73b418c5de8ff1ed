"""LICO: an image classifier trained with language-image consistency losses (docs/lico.md).

Training (one step, B images, labels y)::

    maps   = f_theta(x)                       (B, N, d')  last feature map, N channels
    e      = pool(maps)                       (B, N)      classifier input
    logits = W e + b                          (B, K)
    T      = prompts(unique(y), perm)         (M, K_b, D) frozen CLIP text tower, learnable ctx
    G      = h_psi(T)[:, class(y)]            (B, M, d')
    L      = CE(logits, y) + alpha * MM(e, T[0, class(y)]) + beta * OT(maps, G)

Inference uses only ``f_theta`` and the linear head (:meth:`LICOModule.export`): the text side,
mapping MLP and temperature are training-only and are never built outside ``fit`` -- the
CE baseline is the same module with ``lico.enabled=false``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.backbones import CLIPBackbone, TimmBackbone
from ramlico.backbones import cifar_wrn as _cifar_wrn  # noqa: F401  (registers wrn28_*_cifar in timm)
from ramlico.losses.lico import LICO_SOLVER, ManifoldMatchingLoss, ot_alignment_loss, plan_entropy
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.modules.mapping import MappingMLP
from ramlico.modules.prompt_learner import LICOPromptLearner
from ramlico.ot import SolverOptions
from ramlico.utils import get_logger
from ramlico.utils.optim import accepts, check_factory

__all__ = ["LICOClassifier", "LICOHParams", "LICOModule", "fixmatch_cosine_schedule"]

log = get_logger(__name__)
Tensor = torch.Tensor
TRAIN_ONLY = "lico_train."  # state-dict prefix of the training-only modules


@dataclass(frozen=True)
class LICOHParams:
    """LICO's options (docs/lico.md, "Algorithm notes").

    Attributes:
        enabled: add the MM and OT losses (False = plain CE baseline, nothing text-side built).
        alpha, beta: weights of the MM and OT losses (10, 1).
        n_ctx: context tokens per prompt (12); also the number of prompt variants M.
        dynamic_context: shuffle the context positions every training step.
        variant_init: ``"roll_r"`` | ``"identical"``.
        init_phrase: optional "prompt prior" phrase for the last context slots.
        feature_mode: ``"variant_eot"`` | ``"all_tokens"``.
        prompt_mode: ``"learnable"`` | ``"random_frozen"``.
        mm_repr: ``"pooled_eot"`` (pooled image feature vs EOT feature) | ``"maps_mapped"``
            (flattened maps vs flattened mapped prompts: the paper's wording).
        mm_text_repr: ``"variant0"`` | ``"variant_mean"`` (for ``pooled_eot``).
        mm_sign: -1 (paper) | +1 (reference code).
        tau_init, tau_param: MM temperature init and parametrisation (``"raw"`` | ``"exp"``).
        solver: the OT loss's Sinkhorn settings (:class:`ramlico.ot.SolverOptions`; default
            :data:`ramlico.losses.LICO_SOLVER`: ``reg`` 0.1, ``max_iter`` 100, ``tol`` None =
            all iterations, LICO's stop rule when ``tol`` is set, reference 1e-3); a mapping
            changes only the fields it names.
        ot_grad: ``"envelope"`` | ``"unrolled"``.
        mlp_hidden, mlp_dropout: mapping MLP ``h_psi[a, d']``.
        ctx_seed: seed of the context initialisation.
    """

    enabled: bool = True
    alpha: float = 10.0
    beta: float = 1.0
    n_ctx: int = 12
    dynamic_context: bool = True
    variant_init: str = "roll_r"
    init_phrase: str | None = None
    feature_mode: str = "variant_eot"
    prompt_mode: str = "learnable"
    mm_repr: str = "pooled_eot"
    mm_text_repr: str = "variant0"
    mm_sign: int = -1
    tau_init: float = math.log(1 / 0.07)
    tau_param: str = "raw"
    solver: SolverOptions = field(default=LICO_SOLVER)
    ot_grad: str = "envelope"
    mlp_hidden: int = 512
    mlp_dropout: float = 0.5
    ctx_seed: int | None = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "solver", SolverOptions.build(self.solver, LICO_SOLVER))
        choices = {
            "mm_repr": ("pooled_eot", "maps_mapped"),
            "mm_text_repr": ("variant0", "variant_mean"),
            "ot_grad": ("envelope", "unrolled"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"model.lico.{key}={getattr(self, key)!r} is not supported; choose one of "
                    f"{allowed}"
                )
        if self.alpha < 0 or self.beta < 0:
            raise ValueError(f"model.lico.alpha/beta must be >= 0, got {self.alpha}, {self.beta}")

    @classmethod
    def from_any(cls, value: LICOHParams | Mapping[str, Any] | None) -> LICOHParams:
        """Build from a mapping (Hydra config block), naming unknown keys."""
        if value is None or isinstance(value, LICOHParams):
            return value or cls()
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown model.lico keys {unknown}; allowed: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(value))


class LICOClassifier(nn.Module):
    """The inference network: timm encoder + GAP (timm's pooling) + linear head.

    ``feature_tap`` is an identity on the last feature map: Grad-CAM hooks it (target layer) on
    CNNs; on ViTs Grad-CAM hooks :attr:`cam_layer` (the last block's attention input).

    Args:
        encoder: a :class:`TimmBackbone` (``num_classes=0``).
        num_classes: ``K``; ``None`` = set later with :meth:`set_num_classes` (when the
            datamodule's label names are known).
    """

    def __init__(self, encoder: TimmBackbone, num_classes: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_tap = nn.Identity()
        self.head: nn.Linear | None = None
        if num_classes is not None:
            self.set_num_classes(num_classes)

    def set_num_classes(self, num_classes: int) -> None:
        """Create the ``(K, N_pool)`` linear head once; a different ``K`` later raises."""
        if self.head is None:
            self.head = nn.Linear(self.encoder.num_features, num_classes)
        elif self.head.out_features != num_classes:
            raise ValueError(
                f"the head has {self.head.out_features} classes but the data has {num_classes}; "
                "use the datamodule the model was trained with"
            )

    @property
    def num_prefix_tokens(self) -> int:
        return self.encoder.num_prefix_tokens

    @property
    def cam_layer(self) -> nn.Module:
        """Grad-CAM's target layer. CNNs: :attr:`feature_tap`. ViTs (timm ``blocks`` whose last
        has ``norm1``): that LayerNorm, i.e. the ``(B, L, D)`` tokens entering the last
        attention, so the class token's gradient reaches the patch tokens through it (at the
        final-norm tokens a class-token-pooled ViT gives the patches no gradient: all-zero maps).
        """
        blocks = getattr(self.encoder.model, "blocks", None)
        last = blocks[-1] if isinstance(blocks, nn.Sequential) and len(blocks) else None
        norm = getattr(last, "norm1", None)
        return norm if isinstance(norm, nn.Module) else self.feature_tap

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` -> ``(maps (B, N, d'), pooled (B, N_pool))``.

        CNNs: ``maps`` = last stage output (post-activation) ``(B, C, H_f W_f)``, pooled = GAP.
        ViTs: ``maps`` = final-norm tokens (prefix included) as ``(B, D, L)`` (channels over
        tokens), pooled = timm's pre-logits (class token).
        """
        feats = self.feature_tap(self.encoder.model.forward_features(images))
        pooled = self.encoder.model.forward_head(feats, pre_logits=True)
        maps = feats.flatten(2) if feats.dim() == 4 else feats.transpose(1, 2)
        return maps, pooled

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, K)`` logits."""
        if self.head is None:
            raise RuntimeError("the head is not built yet: call set_num_classes(K) first")
        return self.head(self.features(images)[1])


def fixmatch_cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, cycles: float = 7 / 16
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step cosine ``lr_k = lr_0 cos(cycles * pi * k / total_steps)`` (LICO/FixMatch).

    With ``cycles = 7/16`` it ends at ``cos(7 pi / 16) = 0.195 lr_0``. Step it every batch.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: math.cos(cycles * math.pi * min(k, total_steps) / total_steps)
    )


class LICOModule(RamlicoModule):
    """LICO (or the CE baseline with ``lico.enabled=false``) on a timm image encoder.

    Args:
        encoder: trainable :class:`TimmBackbone` (``num_classes=0``).
        optimizer: ``_partial_`` optimiser factory, called with parameter groups (the MM
            temperature gets ``weight_decay=0``).
        text_encoder: ``_partial_`` factory of the :class:`CLIPBackbone` whose text tower
            encodes the prompts; called only when training with LICO.
        scheduler: optional ``_partial_`` scheduler factory; called with ``optimizer`` and, if
            it accepts it, ``total_steps`` (e.g. :func:`fixmatch_cosine_schedule`); stepped
            per batch.
        lico: :class:`LICOHParams` or a mapping of its fields.
        image_size: input size of the dummy forward that sizes the mapping MLP (``d'``).
        num_classes: ``K`` if known; otherwise taken from the datamodule's label names.
    """

    open_vocabulary = False  # a linear head over the training classes

    def __init__(
        self,
        encoder: TimmBackbone,
        optimizer: Callable[..., torch.optim.Optimizer],
        text_encoder: Callable[[], CLIPBackbone] | None = None,
        scheduler: Callable[..., Any] | None = None,
        lico: LICOHParams | Mapping[str, Any] | None = None,
        image_size: int = 224,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(ks=(1, 5))
        self.save_hyperparameters(
            ignore=["encoder", "optimizer", "text_encoder", "scheduler", "lico"], logger=False
        )  # built objects stay out (weights_only loading); the run config is in checkpoints
        self.hp = LICOHParams.from_any(lico)
        check_factory("model.optimizer", optimizer, bound=("params",))
        if scheduler is not None:
            check_factory("model.scheduler", scheduler, bound=("optimizer",))
        if self.hp.enabled and text_encoder is None:
            raise ValueError("model.lico.enabled=true needs model.text_encoder (a CLIPBackbone)")
        self.classifier = LICOClassifier(encoder, num_classes)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.text_encoder_factory = text_encoder
        self.image_size = image_size
        self.lico_train: nn.ModuleDict | None = None

    # ---------------------------------------------------------------- building
    def on_label_sets_ready(self) -> None:
        self.build(self.label_names["train"], with_text=False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.hp.enabled and self.lico_train is None:
            self.build(self.label_names["train"], with_text=True)

    def build(self, class_names: list[str], with_text: bool = True) -> None:
        """Create the head (once) and, with ``with_text`` and LICO enabled, the training side.

        The training side holds the prompt learner (frozen text tower + context), the mapping
        MLP ``h_psi[512, d']`` with ``d'`` read from a dummy forward, and the MM temperature.
        """
        self.classifier.set_num_classes(len(class_names))
        self.label_names.setdefault("train", list(class_names))
        if not (with_text and self.hp.enabled) or self.lico_train is not None:
            return
        hp = self.hp
        assert self.text_encoder_factory is not None  # checked in __init__ (lico.enabled)
        prompts = LICOPromptLearner(
            self.text_encoder_factory(), class_names, n_ctx=hp.n_ctx,
            variant_init=hp.variant_init, init_phrase=hp.init_phrase,
            feature_mode=hp.feature_mode, prompt_mode=hp.prompt_mode, seed=hp.ctx_seed,
        )  # fmt: skip
        d_map = self.feature_map_shape()[1]
        self.lico_train = nn.ModuleDict(
            dict(
                prompts=prompts,
                mapping=MappingMLP(prompts.embed_dim, d_map, hp.mlp_hidden, hp.mlp_dropout),
                mm=ManifoldMatchingLoss(hp.tau_init, hp.tau_param, hp.mm_sign),
            )
        ).to(self.device)
        log.info(
            "LICO: feature maps (N=%d, d'=%d), M=%d prompt rows, %d classes",
            *self.feature_map_shape(), prompts.num_rows, len(class_names),
        )  # fmt: skip

    def feature_map_shape(self) -> tuple[int, int]:
        """``(N, d')`` of the encoder's last feature map at ``image_size`` (dummy forward)."""
        encoder = self.classifier.encoder
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            x = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
            maps, _ = self.classifier.features(x)
        encoder.train(was_training)
        return int(maps.shape[1]), int(maps.shape[2])

    def export(self) -> LICOClassifier:
        """The plain classifier (encoder + head): no CLIP, no prompts, no MLP."""
        if self.classifier.head is None:
            raise RuntimeError("the head is built in setup(); call build(class_names) first")
        return self.classifier

    # ---------------------------------------------------------------- steps
    def class_indices(self, label_names: Sequence[str]) -> list[int]:
        """Head rows of ``label_names`` (a closed-set classifier scores its trained classes)."""
        known = {n: i for i, n in enumerate(self.label_names.get("train", []))}
        missing = [n for n in label_names if n not in known]
        if missing:
            raise ValueError(
                f"LICO is a closed-set classifier; labels {missing[:10]} are not among its "
                f"{len(known)} trained classes (e.g. {list(known)[:5]}); pass trained class names"
            )
        return [known[n] for n in label_names]

    def scores(self, images: Tensor, label_names: Sequence[str]) -> Tensor:
        """``(B, C)`` classifier logits of ``label_names`` (rows of the linear head)."""
        logits = self.export()(images)
        return logits[:, self.class_indices(label_names)]

    def label_scores(
        self, images: Tensor, label_names: Sequence[str], evidence: bool = True
    ) -> LabelScores:
        """Logits and, with ``evidence``, one Grad-CAM map per label ``(B, C, H, W)`` in [0, 1].

        Grad-CAM of each requested class at the classifier's ``feature_tap`` (the tap of
        docs/lico.md), from one forward pass (:func:`ramlico.explain.saliency.gradcam_per_class`);
        maps are at the input resolution.
        """
        with torch.no_grad():
            logits = self.scores(images, label_names)
        if not evidence:
            return LabelScores(scores=logits, logits=logits)
        from ramlico.explain.saliency import gradcam_per_class

        maps = gradcam_per_class(self.export(), images, self.class_indices(label_names))
        heatmaps = maps.to(images.device)  # (B, C, H, W)
        return LabelScores(scores=logits, logits=logits, heatmaps=heatmaps)

    def lico_losses(self, maps: Tensor, pooled: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """MM and OT losses of one batch (docs/lico.md, "Manifold matching", "OT loss").

        Args:
            maps: ``(B, N, d')``; pooled: ``(B, N_pool)``; labels: ``(B,)`` int64.
        Returns:
            dict with ``mm``, ``ot`` (scalars) and ``plan_entropy`` (mean, for logging).
        """
        hp, parts = self.hp, self.lico_train
        if parts is None:
            raise RuntimeError("LICO losses need the text side: call build(class_names) first")
        classes, inverse = torch.unique(labels, return_inverse=True)
        perm = None
        if hp.dynamic_context and self.training:
            perm = torch.randperm(hp.n_ctx, device=labels.device)
        text = parts["prompts"](classes, perm)  # (M, K_b, D)
        mapped = parts["mapping"](text)[:, inverse].transpose(0, 1)  # (B, M, d')
        if hp.mm_repr == "maps_mapped":
            mm = parts["mm"](maps.flatten(1), mapped.flatten(1))
        else:
            txt = text[0] if hp.mm_text_repr == "variant0" else F.normalize(text, dim=-1).mean(0)
            mm = parts["mm"](pooled, txt[inverse])
        ot, plan = ot_alignment_loss(maps, mapped, hp.solver, grad=hp.ot_grad)
        return dict(mm=mm, ot=ot, plan_entropy=plan_entropy(plan).mean())

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, labels = batch[0], batch[1]
        classifier = self.export()
        maps, pooled = classifier.features(images)
        assert classifier.head is not None  # export() checked it
        logits = classifier.head(pooled)
        ce = F.cross_entropy(logits, labels)
        loss = ce
        logs = {"train/ce": ce}
        if self.hp.enabled:
            parts = self.lico_losses(maps, pooled, labels)
            loss = ce + self.hp.alpha * parts["mm"] + self.hp.beta * parts["ot"]
            logs.update({f"train/{k}": v for k, v in parts.items()})
            logs["train/tau"] = self._mm_loss().tau.detach()
        logs["train/acc"] = (logits.argmax(-1) == labels).float().mean() * 100
        logs["train/loss"] = loss
        self.log_dict(logs, prog_bar=False, batch_size=images.shape[0])
        return loss

    def _mm_loss(self) -> ManifoldMatchingLoss:
        """The manifold-matching loss (it holds the temperature) of the built text side."""
        if self.lico_train is None:
            raise RuntimeError("the LICO text side is built in setup(); call build() first")
        return cast(ManifoldMatchingLoss, self.lico_train["mm"])

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        temperature: list[nn.Parameter] = []
        if self.lico_train is not None:
            temperature = [self._mm_loss().tau_param]
        temp_ids = {id(p) for p in temperature}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in temp_ids]
        groups: list[dict[str, Any]] = [{"params": rest}]
        if temperature:  # tau is excluded from weight decay (ramlico; the reference code decays it)
            groups.append({"params": temperature, "weight_decay": 0.0})
        optimizer = self.optimizer_factory(params=groups)
        if self.scheduler_factory is None:
            return optimizer
        extra = {}
        if accepts(self.scheduler_factory, "total_steps"):
            extra["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, **extra)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ramlico"]["lico"] = asdict(self.hp)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build the head from the saved label names; drop training-only tensors when the text
        side is not built (evaluation, export), so loading never needs CLIP."""
        names = (checkpoint.get("ramlico") or {}).get("label_names", {}).get("train")
        if self.classifier.head is None and names:
            self.build(list(names), with_text=False)
        if self.lico_train is None:
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith(TRAIN_ONLY)]:
                del state[key]
        super().on_load_checkpoint(checkpoint)
