"""RAM: Recover And Match, open-vocabulary multi-label recognition (spec ram.md).

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

Trainable: TSS adapters and temperatures (AdamW), visual and text prompts (SGD), with RAM's
warm-up + cosine schedule stepped at the start of every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.explain.heatmaps import patch_grid
from ramlico.losses import mmc_loss
from ramlico.methods.base import LabelScores, RamlicoModule
from ramlico.modules import TextClassifierCache
from ramlico.modules.deep_prompts import DeepPromptTextEncoder
from ramlico.modules.ema import EMAShadow
from ramlico.modules.kcot import KCOTConfig, kcot_plan, teacher_plan
from ramlico.modules.ladder import LadderLocalAdapter, LadderOutput
from ramlico.modules.text_tower import FrozenCLIPTextTower
from ramlico.utils import get_logger
from ramlico.utils.optim import CombinedOptimizer
from ramlico.utils.schedule import warmup_cosine_lr

__all__ = ["RAM", "RAMOutput"]


def unknown_keys(options: dict[str, Any], allowed: set[str]) -> list[str]:
    """Keys of ``options`` outside ``allowed`` (sorted), for error messages."""
    return sorted(set(options) - allowed)


log = get_logger(__name__)
Tensor = torch.Tensor


class RAMOutput(dict):
    """Outputs of :meth:`RAM.forward`: ``s_glb``, ``s_loc``, ``similarity``, ``plan``, ..."""


class RAM(RamlicoModule):
    """RAM LightningModule.

    Args:
        backbone: frozen :class:`CLIPBackbone` (open_clip ViT; ``ViT-B-16-quickgelu`` + ``openai``).
        saa_layers, tss_layers, visual_prompt_layers, visual_prompt_len: the ladder (ram.md 2.3).
        text_prompt_layers, text_prompt_len: deep label prompts.
        lla_combine: ``"sum"`` (reference) or ``"mean"`` (paper Eq. 5).
        template: label prompt template.
        tau_loc, tau_glb: initial temperatures (raw learnable scalars).
        kcot: KCOT options (:class:`KCOTConfig` fields) plus ``teacher`` (bool, TKT on/off).
        optim: ``adapter_lr``, ``temperature_lr``, ``prompt_lr``, ``momentum``, ``weight_decay``,
            ``warmup_epochs``, ``warmup_lr``, ``min_lr``, ``schedule_epochs``.
        mmc_per_sample: the "MMC w/o batch" ablation.
        ema: ``None`` (off) or ``{"decay": 0.9997, "evaluate": True, "reset_each_epoch": False}``:
            an EMA of the trainable tensors (and TSS BatchNorm statistics), updated after every
            step; ``evaluate`` runs validation/test with the averaged weights (``False`` = the
            raw weights; the averages still travel in the checkpoint); ``reset_each_epoch``
            restarts it from the live weights every epoch (the reference's behaviour).
        ks: ``k`` of P/R/F1@k.
    """

    def __init__(
        self,
        backbone: CLIPBackbone,
        saa_layers: Sequence[int] = tuple(range(12)),
        tss_layers: Sequence[int] = (9, 10, 11),
        visual_prompt_layers: Sequence[int] = (9, 10, 11),
        visual_prompt_len: int = 8,
        text_prompt_layers: Sequence[int] = (9, 10, 11),
        text_prompt_len: int = 4,
        lla_combine: str = "sum",
        template: str = "A photo of a {}.",
        tau_loc: float = 2e-3,
        tau_glb: float = 0.01,
        kcot: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        mmc_per_sample: bool = False,
        ema: dict[str, Any] | None = None,
        ks: Sequence[int] = (3, 5),
    ) -> None:
        super().__init__(ks=ks)
        self.save_hyperparameters(ignore=["backbone"], logger=False)
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
        kcot = dict(kcot or {})
        self.use_teacher = bool(kcot.pop("teacher", True))
        kcot_fields = set(KCOTConfig.__dataclass_fields__)
        if unknown_keys(kcot, kcot_fields):
            raise ValueError(
                f"model.kcot: unknown keys {unknown_keys(kcot, kcot_fields)}; "
                f"allowed: {sorted(kcot_fields | {'teacher'})}"
            )
        self.kcot = KCOTConfig(**kcot)
        self.optim = {
            "adapter_lr": 5e-6,
            "temperature_lr": 5e-5,
            "prompt_lr": 1e-3,
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "warmup_epochs": 3,
            "warmup_lr": 5e-7,
            "min_lr": 1e-7,
            "schedule_epochs": 60,
        }
        if unknown_keys(optim or {}, set(self.optim)):
            raise ValueError(
                f"model.optim: unknown keys {unknown_keys(optim or {}, set(self.optim))}; "
                f"allowed: {sorted(self.optim)}"
            )
        self.optim.update(optim or {})
        self.template = template
        self.mmc_per_sample = mmc_per_sample
        self._tokens: dict[tuple[str, ...], Tensor] = {}
        self.teacher_text = TextClassifierCache(backbone, (template,))
        self._eval_text: dict[tuple[str, ...], Tensor] = {}
        ema = dict(ema or {})
        self.ema_evaluate = bool(ema.pop("evaluate", True))
        self.ema_reset_each_epoch = bool(ema.pop("reset_each_epoch", False))
        if unknown_keys(ema, {"decay"}):
            raise ValueError(f"model.ema: unknown keys {unknown_keys(ema, {'decay'})}")
        # built last: it snapshots every trainable tensor defined above
        self.ema = EMAShadow(self, float(ema["decay"])) if ema.get("decay") is not None else None
        self._ema_swap = None

    # ------------------------------------------------------------------ text side
    def _label_tokens(self, names: Sequence[str]) -> Tensor:
        """``(C, 77)`` CPU token ids of the label prompts (cached; kept on the CPU, sync-free)."""
        key = tuple(names)
        if key not in self._tokens:
            self._tokens[key] = self.backbone.tokenize([self.template.format(n) for n in names])
        return self._tokens[key]

    def label_features(self, names: Sequence[str]) -> Tensor:
        """``(C, D)`` un-normalised label features of the prompted text tower (with gradient)."""
        return self.text_prompts(self.text_tower, self._label_tokens(names))

    def teacher_label_features(self, names: Sequence[str]) -> Tensor:
        """``(C, D)`` unit features of the frozen, prompt-free text tower (cached per label set)."""
        return self.teacher_text.get(names, self.device).t().float()

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
        use_teacher = targets is not None and self.use_teacher and self.kcot.beta > 0
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

        The cache is emptied whenever the prompts may change (training, loading, EMA swaps).
        """
        key = tuple(names)
        text = self._eval_text.get(key)
        if text is None:
            with torch.no_grad():
                text = self.label_features(names)
            self._eval_text[key] = text
        return text

    def label_scores(
        self,
        images: Tensor,
        label_names: Sequence[str],
        evidence: bool = True,
        kcot: KCOTConfig | None = None,
    ) -> LabelScores:
        """RAM's inference score, its per-label logit and the OT plan as region evidence.

        ``kcot`` replaces the KCOT settings (the ONNX export uses a fixed iteration count).

        * ``scores`` = ``(softmax_C(s_glb) + softmax_C(s_loc)) / 2`` (ram.md section 9);
        * ``logits`` = ``(s_glb + (C / C_train) s_loc) / 2``: the mean of the global logit and
          the local logit brought to the training label count ``C_train`` (the plan's columns
          carry ``1/C``, so ``s_loc`` scales with ``1/C``; ram.md section 9). MMC trains these
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

    def _enter_eval(self) -> None:
        self._eval_text.clear()  # prompts may have changed (training) or been loaded (checkpoint)
        if self.ema is not None and self.ema_evaluate and self._ema_swap is None:
            self._ema_swap = self.ema.swapped(self)
            self._ema_swap.__enter__()

    def _leave_eval(self) -> None:
        if self._ema_swap is not None:
            self._ema_swap.__exit__(None, None, None)
            self._ema_swap = None
        self._eval_text.clear()

    def on_validation_start(self) -> None:
        self._enter_eval()

    def on_validation_end(self) -> None:
        self._leave_eval()

    def on_test_start(self) -> None:
        self._enter_eval()

    def on_test_end(self) -> None:
        self._leave_eval()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, targets = batch[0], batch[1]
        self._eval_text.clear()
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
        self._eval_text.clear()
        if self.ema is not None and self.ema_reset_each_epoch:
            self.ema.reset(self)
        epoch = self.current_epoch + 1  # the reference steps its schedule at epoch start, t = 1..
        o = self.optim
        for group in self.optimizers().param_groups:
            group["lr"] = warmup_cosine_lr(
                epoch,
                group["base_lr"],
                warmup_epochs=o["warmup_epochs"],
                warmup_lr=o["warmup_lr"],
                min_lr=o["min_lr"],
                max_epochs=o["schedule_epochs"],
            )
            self.log(f"lr/{group['name']}", group["lr"])

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by optimiser group: adapters, temperatures, prompts."""
        prompts = [*self.ladder.visual_prompts.values(), *self.text_prompts.prompts.values()]
        return {
            "adapters": [p for p in self.ladder.tss.parameters() if p.requires_grad],
            "temperatures": [self.tau_loc, self.tau_glb],
            "prompts": [p for p in prompts if p.requires_grad],
        }

    def configure_optimizers(self) -> CombinedOptimizer:
        """AdamW (adapters, temperatures) + SGD with momentum (prompts), stepped as one."""
        o = self.optim
        groups = self.param_groups()
        adamw_groups = [
            {
                "params": groups["adapters"],
                "lr": o["adapter_lr"],
                "base_lr": o["adapter_lr"],
                "name": "adapters",
            },
            {
                "params": groups["temperatures"],
                "lr": o["temperature_lr"],
                "base_lr": o["temperature_lr"],
                "name": "temperatures",
            },
        ]
        adamw_groups = [g for g in adamw_groups if g["params"]]
        optimizers: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(adamw_groups, weight_decay=o["weight_decay"])
        ]  # fmt: skip
        if groups["prompts"]:
            optimizers.append(
                torch.optim.SGD(
                    [
                        {
                            "params": groups["prompts"],
                            "lr": o["prompt_lr"],
                            "base_lr": o["prompt_lr"],
                            "name": "prompts",
                        }
                    ],
                    momentum=o["momentum"],
                    weight_decay=o["weight_decay"],
                )
            )
        return CombinedOptimizer(optimizers)
