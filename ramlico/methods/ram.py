"""RAM: Recover And Match, open-vocabulary multi-label recognition (docs/ram.md).

A frozen CLIP ViT runs with a trainable ladder side network (SAA + TSS, visual prompts) and deep
label prompts in its text tower; regions are matched to labels by knowledge-constrained OT and
both the global and the plan-weighted local logits are trained with the MMC loss::

    t        = text tower with deep prompts ("A photo of a {name}.")        (C, D)
    g, z     = vision tower with the ladder side stream                      (B, D), (B, N, D)
    s_glb    = cos(g, t) / tau_glb                                           (B, C)
    S        = cos(z, t)                                                     (B, N, C)
    T        = KCOT(S, teacher plan P)   (no gradient)                       (B, N, C)
    s_loc    = sum_n T * S / tau_loc                                         (B, C)
    loss     = MMC(s_glb, Y) + MMC(s_loc, Y)
    score    = (softmax_C(s_glb) + softmax_C(s_loc)) / 2                     (inference, no teacher)

Trainable: TSS adapters and temperatures (AdamW), visual and text prompts (SGD), one optimiser
factory per group, stepped as one :class:`CombinedOptimizer`; RAM's warm-up + cosine schedule is
timm's ``CosineLRScheduler`` stepped once per epoch (:func:`ramlico.utils.schedule.
warmup_cosine_scheduler`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.explain.heatmaps import patch_grid
from ramlico.losses import mmc_loss
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.modules import TextFeatureCache
from ramlico.modules.deep_prompts import DeepPromptTextEncoder
from ramlico.modules.kcot import KCOTConfig, kcot_plan, teacher_plan
from ramlico.modules.ladder import LadderLocalAdapter, LadderOutput
from ramlico.modules.layers import LayerSpec
from ramlico.modules.text_tower import FrozenCLIPTextTower
from ramlico.utils import get_logger
from ramlico.utils.optim import CombinedOptimizer, check_factory

__all__ = ["RAM", "RAMOutput"]

log = get_logger(__name__)
Tensor = torch.Tensor
OptimizerFactory = Callable[..., torch.optim.Optimizer]
#: called as ``factory(optimizer=...)`` (a Hydra ``_partial_`` of a scheduler class)
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
#: Trainable parameter groups, in optimiser order (see :meth:`RAM.param_groups`).
GROUPS = ("adapters", "temperatures", "prompts")


class RAMOutput(dict):
    """Outputs of :meth:`RAM.forward`: ``s_glb``, ``s_loc``, ``similarity``, ``plan``, ..."""


class RAM(RamlicoModule):
    """RAM LightningModule.

    Args:
        backbone: frozen :class:`CLIPBackbone` (open_clip ViT; ``ViT-B-16-quickgelu`` + ``openai``).
        saa_layers, tss_layers, visual_prompt_layers, visual_prompt_len: the ladder (docs/ram.md).
        text_prompt_layers, text_prompt_len: deep label prompts. Block choices are
            :data:`~ramlico.modules.layers.LayerSpec` values: ``"all"``, ``"last:3"`` (fit any
            depth, so one override switches the backbone) or indices (negative = from the end).
        lla_combine: ``"sum"`` (reference) or ``"mean"`` (paper Eq. 5).
        template: label prompt template.
        tau_loc, tau_glb: initial temperatures (raw learnable scalars).
        kcot: :class:`KCOTConfig` (teacher on/off, marginals, Sinkhorn settings); a mapping of its
            fields is accepted too; ``None`` = the reference defaults.
        optimizer: one ``_partial_`` optimiser factory per parameter group, keys ``adapters``
            (TSS; reference AdamW 5e-6), ``temperatures`` (AdamW 5e-5) and ``prompts`` (visual
            and text prompts; SGD 1e-3, momentum 0.9); each is called with
            ``params=[{"params": ..., "name": group}]`` and all are stepped as one
            :class:`CombinedOptimizer`. ``None``: no training (inference, evaluation).
        scheduler: optional ``_partial_`` factory called with the optimiser, stepped once per
            epoch (reference: :func:`ramlico.utils.schedule.warmup_cosine_scheduler`).
        mmc_per_sample: the "MMC w/o batch" ablation.
        ks: ``k`` of P/R/F1@k.

    An exponential moving average of the weights is the :class:`ramlico.callbacks.EMA` callback.
    """

    def __init__(
        self,
        backbone: CLIPBackbone,
        saa_layers: LayerSpec = "all",
        tss_layers: LayerSpec = "last:3",
        visual_prompt_layers: LayerSpec = "last:3",
        visual_prompt_len: int = 8,
        text_prompt_layers: LayerSpec = "last:3",
        text_prompt_len: int = 4,
        lla_combine: str = "sum",
        template: str = "A photo of a {}.",
        tau_loc: float = 2e-3,
        tau_glb: float = 0.01,
        kcot: KCOTConfig | Mapping[str, Any] | None = None,
        optimizer: Mapping[str, OptimizerFactory] | None = None,
        scheduler: SchedulerFactory | None = None,
        mmc_per_sample: bool = False,
        ks: Sequence[int] = (3, 5),
    ) -> None:
        super().__init__(ks=ks)
        # built objects stay out of the checkpoint's hyper-parameters (weights_only loading);
        # the resolved run config travels in checkpoint["ramlico"]
        self.save_hyperparameters(
            ignore=["backbone", "kcot", "optimizer", "scheduler"], logger=False
        )
        self.backbone = backbone
        model = backbone.model
        visual = model.visual
        self.ladder = LadderLocalAdapter(
            width=visual.transformer.width,
            text_dim=backbone.embed_dim,
            n_blocks=len(visual.transformer.resblocks),
            saa_layers=saa_layers,
            tss_layers=tss_layers,
            visual_prompt_layers=visual_prompt_layers,
            visual_prompt_len=visual_prompt_len,
            combine=lla_combine,
        )
        self.text_tower = FrozenCLIPTextTower(backbone)  # shares the backbone's text modules
        self.text_prompts = DeepPromptTextEncoder(
            width=model.transformer.width,
            n_blocks=len(model.transformer.resblocks),
            prompt_layers=text_prompt_layers,
            prompt_len=text_prompt_len,
        )
        self.tau_loc = nn.Parameter(torch.tensor(float(tau_loc)))
        self.tau_glb = nn.Parameter(torch.tensor(float(tau_glb)))
        self.kcot = KCOTConfig.build(kcot)
        self.optimizer_factories = self._check_optimizer(optimizer)
        if scheduler is not None:
            check_factory("model.scheduler", scheduler, bound=("optimizer",))
        self.scheduler_factory = scheduler
        self.template = template
        self.mmc_per_sample = mmc_per_sample
        # label-prompt token ids, the frozen teacher's classifiers and (kind "prompted") the
        # prompted label features of evaluation, which change with the prompts
        self.text = TextFeatureCache(backbone)
        self.teacher_templates = TextFeatureCache.check_templates((template,))

    @staticmethod
    def _check_optimizer(
        optimizer: Mapping[str, OptimizerFactory] | None,
    ) -> dict[str, OptimizerFactory] | None:
        """The factories by group; a missing or unknown group or option is named up front."""
        if optimizer is None:
            return None
        if not isinstance(optimizer, Mapping):
            raise TypeError(
                f"model.optimizer must map each group {list(GROUPS)} to an optimiser factory "
                f"(_partial_: true), got {type(optimizer).__name__}"
            )
        if set(optimizer) != set(GROUPS):
            raise ValueError(
                f"model.optimizer: groups {sorted(optimizer)}; needs exactly {list(GROUPS)} "
                f"(missing {sorted(set(GROUPS) - set(optimizer))}, unknown "
                f"{sorted(set(optimizer) - set(GROUPS))})"
            )
        for name, factory in optimizer.items():
            check_factory(f"model.optimizer.{name}", factory, bound=("params",))
        return {name: optimizer[name] for name in GROUPS}

    # ------------------------------------------------------------------ text side
    def _label_tokens(self, names: Sequence[str]) -> Tensor:
        """``(C, 77)`` CPU token ids of the label prompts (cached; kept on the CPU, sync-free)."""
        return self.text.get(
            ("tokens", tuple(names)),
            lambda: self.backbone.tokenize([self.template.format(n) for n in names]),
        )

    def label_features(self, names: Sequence[str]) -> Tensor:
        """``(C, D)`` un-normalised label features of the prompted text tower (with gradient)."""
        return self.text_prompts(self.text_tower, self._label_tokens(names))

    def teacher_label_features(self, names: Sequence[str]) -> Tensor:
        """``(C, D)`` unit features of the frozen, prompt-free text tower (cached per label set)."""
        return self.text.classifier(names, self.teacher_templates, self.device).t().float()

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        images: Tensor,
        names: Sequence[str],
        targets: Tensor | None = None,
        text: Tensor | None = None,
        kcot: KCOTConfig | None = None,
    ) -> RAMOutput:
        """Logits and plan for ``images`` ``(B, 3, H, W)`` over the labels ``names``.

        With ``targets`` ``(B, C)`` (training) the teacher plan enters KCOT (if enabled).
        ``text`` ``(C, D)`` replaces the label features (cached); ``kcot`` the KCOT settings
        (e.g. a fixed iteration count for export).

        Returns:
            :class:`RAMOutput` with ``s_glb``, ``s_loc`` ``(B, C)``, ``similarity`` and ``plan``
            ``(B, N, C)``, ``scores`` ``(B, C)`` (inference fusion), ``teacher_plan``; all fp32.
        """
        t = self.label_features(names) if text is None else text
        use_teacher = targets is not None and self.kcot.teacher and self.kcot.beta > 0
        out: LadderOutput = self.ladder(
            self.backbone.model.visual, images, t, with_teacher=use_teacher
        )
        # Similarities, logits and KCOT in fp32 even under bf16/fp16 autocast: a bf16 cosine is off
        # by ~4e-3, i.e. by ~0.4 in the cost's softmax(100 S) logits.
        with torch.autocast(images.device.type, enabled=False):
            t_hat = F.normalize(t.float(), dim=-1)
            g_hat = F.normalize(out.global_embed.float(), dim=-1)
            z_hat = F.normalize(out.regions.float(), dim=-1)
            s_glb = g_hat @ t_hat.t() / self.tau_glb
            sim = torch.einsum("bnd,cd->bnc", z_hat, t_hat)
            prior = None
            if use_teacher:
                assert out.teacher_regions is not None and targets is not None  # with_teacher
                with torch.no_grad():
                    zt = F.normalize(out.teacher_regions.float(), dim=-1)
                    st = torch.einsum("bnd,cd->bnc", zt, self.teacher_label_features(names))
                    prior = teacher_plan(
                        st, targets, scale=self.kcot.scale, sharpen=self.kcot.sharpen,
                        fill=self.kcot.fill,
                    )  # fmt: skip
            plan = kcot_plan(sim, kcot or self.kcot, prior)
            s_loc = (plan * sim).sum(dim=1) / self.tau_loc
            scores = 0.5 * (torch.softmax(s_glb, dim=-1) + torch.softmax(s_loc, dim=-1))
        return RAMOutput(
            s_glb=s_glb,
            s_loc=s_loc,
            similarity=sim,
            plan=plan,
            scores=scores,
            teacher_plan=prior,
        )

    def eval_label_features(self, names: Sequence[str]) -> Tensor:
        """``(C, D)`` prompted label features without gradient, cached per label list.

        The cache kind ``"prompted"`` is emptied whenever the prompts may change (training,
        loading, EMA swaps).
        """
        with torch.no_grad():
            return self.text.get(("prompted", str(self.device), tuple(names)),
                                 lambda: self.label_features(names))  # fmt: skip

    def label_scores(
        self,
        images: Tensor,
        label_names: Sequence[str],
        evidence: bool = True,
        kcot: KCOTConfig | None = None,
    ) -> LabelScores:
        """RAM's inference score, its per-label logit and the OT plan as region evidence.

        ``kcot`` replaces the KCOT settings (the ONNX export uses a fixed iteration count).

        * ``scores`` = ``(softmax_C(s_glb) + softmax_C(s_loc)) / 2`` (docs/ram.md, "Scores and
          loss");
        * ``logits`` = ``(s_glb + (C / C_train) s_loc) / 2``: the mean of the global logit and
          the local logit brought to the training label count ``C_train`` (the plan's columns
          carry ``1/C``, so ``s_loc`` scales with ``1/C``, docs/ram.md). MMC trains these
          logits with one softmax over every image-label pair of a batch, so they rank pairs
          across images, which the per-image softmax of ``scores`` cannot; calibration maps
          them to probabilities;
        * ``heatmaps`` = ``C T[:, :, c]`` on the ``h x w`` patch grid: where label ``c``'s mass
          went (each map sums to 1 over the patches).
        """
        names = list(label_names)
        text = self.eval_label_features(names)
        with torch.no_grad():
            out = self(images, names, text=text, kcot=kcot)
        n_labels = len(names)
        n_train = len(self.label_names.get("train") or names)
        logits = 0.5 * (out["s_glb"] + out["s_loc"] * (n_labels / n_train))
        heatmaps = patch_grid(out["plan"] * n_labels) if evidence else None
        return LabelScores(scores=out["scores"], logits=logits, heatmaps=heatmaps)

    def scores(self, images: Tensor, label_names: Sequence[str]) -> Tensor:
        """``(B, C)`` RAM inference scores over ``label_names`` (no gradient)."""
        return self.label_scores(images, label_names, evidence=False).scores

    # The cached label features depend on the prompts: they change in training, are loaded from
    # a checkpoint, or are swapped for their average by the EMA callback (whose *_start hooks run
    # before these).
    def on_validation_start(self) -> None:
        self.text.clear("prompted")

    def on_validation_end(self) -> None:
        self.text.clear("prompted")

    def on_test_start(self) -> None:
        self.text.clear("prompted")

    def on_test_end(self) -> None:
        self.text.clear("prompted")

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, targets = batch[0], batch[1]
        self.text.clear("prompted")
        out = self(images, self.label_names["train"], targets=targets)
        loss_glb = mmc_loss(out["s_glb"], targets, per_sample=self.mmc_per_sample)
        loss_loc = mmc_loss(out["s_loc"], targets, per_sample=self.mmc_per_sample)
        loss = loss_glb + loss_loc
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"RAM: non-finite loss at step {self.global_step} (global {loss_glb.item()}, "
                f"local {loss_loc.item()}); lower the learning rates or check the temperatures"
            )
        bs = images.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/loss_glb", loss_glb, batch_size=bs)
        self.log("train/loss_loc", loss_loc, batch_size=bs)
        self.log("train/tau_loc", self.tau_loc.detach(), batch_size=bs)
        self.log("train/tau_glb", self.tau_glb.detach(), batch_size=bs)
        if targets.sum() == 0:
            self.log("train/no_positive_batches", 1.0, reduce_fx="sum", batch_size=bs)
        return loss

    def on_train_epoch_start(self) -> None:
        self.text.clear("prompted")
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)  # one (combined) optimiser
        for group in optimizer.param_groups:  # constant within the epoch, on every rank
            self.log(f"lr/{group['name']}", group["lr"], sync_dist=True)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by optimiser group: adapters, temperatures, prompts."""
        prompts = [*self.ladder.visual_prompts.values(), *self.text_prompts.prompts.values()]
        return {
            "adapters": [p for p in self.ladder.tss.parameters() if p.requires_grad],
            "temperatures": [self.tau_loc, self.tau_glb],
            "prompts": [p for p in prompts if p.requires_grad],
        }

    def configure_optimizers(self) -> Any:
        """One optimiser per group (AdamW, AdamW, SGD by default), stepped as one, + schedule."""
        if self.optimizer_factories is None:
            raise ValueError(
                "RAM was built without optimiser factories: pass optimizer={'adapters': ..., "
                "'temperatures': ..., 'prompts': ...} (model.optimizer in configs/model/ram.yaml)"
            )
        groups = self.param_groups()
        optimizers = [
            self.optimizer_factories[name](params=[{"params": groups[name], "name": name}])
            for name in GROUPS
            if groups[name]
        ]
        combined = CombinedOptimizer(optimizers)
        if self.scheduler_factory is None:
            return {"optimizer": combined}
        scheduler = self.scheduler_factory(optimizer=combined)
        return {
            "optimizer": combined,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "frequency": 1},
        }
