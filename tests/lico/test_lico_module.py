"""LICOModule: one training step, gradient routing, export = baseline, lean checkpoints."""

from __future__ import annotations

import functools

import pytest
import torch

from ramlico.backbones import TimmBackbone
from ramlico.methods.lico import LICOClassifier, LICOHParams, LICOModule, fixmatch_cosine_schedule

NAMES = ["red circle", "blue square", "green triangle", "yellow star"]


def make_module(clip, enabled: bool = True, **lico) -> LICOModule:
    """Tiny LICO on ``test_resnet``; ``clip`` is the session's frozen tiny CLIP (shared)."""
    torch.manual_seed(0)
    # zero_init_last=False: timm zero-inits the last BN of each block, which would leave the
    # residual-branch convs without gradient at step 0 and hide routing bugs.
    encoder = TimmBackbone("test_resnet", zero_init_last=False)
    text = functools.partial(lambda c: c, clip)
    module = LICOModule(
        encoder,
        functools.partial(torch.optim.SGD, lr=0.03, momentum=0.9, weight_decay=1e-4),
        text_encoder=text,
        lico=dict(enabled=enabled, n_ctx=4, mlp_hidden=16, mlp_dropout=0.0, **lico),
        image_size=32,
    )
    module.build(NAMES, with_text=True)
    return module


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 32, 32, generator=gen), torch.tensor([0, 1, 2, 0, 3, 1])


def test_one_step_routes_gradients_to_every_trainable_part_and_never_to_clip(tiny_clip, batch):
    module = make_module(tiny_clip)
    module.train()
    maps, pooled = module.classifier.features(batch[0])
    assert maps.shape == (6, 96, 1) and pooled.shape == (6, 96)  # test_resnet: 1 x 1 at 32 px
    parts = module.lico_losses(maps, pooled, batch[1])
    loss = (
        torch.nn.functional.cross_entropy(module.classifier.head(pooled), batch[1])
        + 10 * parts["mm"] + parts["ot"]
    )  # fmt: skip
    assert torch.isfinite(loss)
    loss.backward()
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    groups = ("classifier.encoder.", "classifier.head.", "lico_train.prompts.ctx",
              "lico_train.mapping.", "lico_train.mm.tau_param")  # fmt: skip
    for g in groups:
        assert any(n.startswith(g) for n in trainable), g
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    frozen = [p for n, p in module.named_parameters() if n.startswith("lico_train.prompts.text.")]
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)


def test_mapping_mlp_output_size_comes_from_the_real_feature_map(tiny_clip):
    module = make_module(tiny_clip)
    assert module.lico_train["mapping"].out_dim == 1  # (32 / 32)^2
    module.image_size = 64
    assert module.feature_map_shape() == (96, 4)


def test_g_has_shape_b_m_dprime_and_mm_variants_run(tiny_clip, batch):
    module = make_module(tiny_clip, mm_repr="maps_mapped", mm_text_repr="variant_mean", mm_sign=1)
    module.eval()
    maps, pooled = module.classifier.features(batch[0])
    classes, inv = torch.unique(batch[1], return_inverse=True)
    text = module.lico_train["prompts"](classes)
    g = module.lico_train["mapping"](text)[:, inv].transpose(0, 1)
    assert g.shape == (6, 4, 1)
    out = module.lico_losses(maps, pooled, batch[1])
    assert all(torch.isfinite(v) for v in out.values())


def test_export_has_the_baseline_parameter_count_and_the_same_logits(tiny_clip, batch):
    lico, base = make_module(tiny_clip, True), make_module(tiny_clip, False)
    assert base.lico_train is None  # the CE baseline never builds the text side
    n_lico = sum(p.numel() for p in lico.export().parameters())
    n_base = sum(p.numel() for p in base.export().parameters())
    plain = TimmBackbone("test_resnet")
    n_plain = sum(p.numel() for p in plain.parameters()) + 96 * len(NAMES) + len(NAMES)
    assert n_lico == n_base == n_plain
    assert not any("clip" in type(m).__name__.lower() for m in lico.export().modules())
    lico.eval()
    with torch.no_grad():
        torch.testing.assert_close(lico.export()(batch[0]), lico.scores(batch[0], NAMES))


def test_scores_pick_the_head_rows_of_the_requested_labels(tiny_clip, batch):
    lico = make_module(tiny_clip, False).eval()
    with torch.no_grad():
        full = lico.export()(batch[0])
        picked = lico.scores(batch[0], [NAMES[2], NAMES[0]])
    torch.testing.assert_close(picked, full[:, [2, 0]])
    with pytest.raises(ValueError, match="closed-set.*'zebra'"):
        lico.scores(batch[0], ["zebra"])


def test_label_scores_give_one_gradcam_map_per_label(tiny_clip, batch):
    from ramlico.explain import SaliencyExplainer

    lico = make_module(tiny_clip, False).eval()
    out = lico.label_scores(batch[0], [NAMES[1], NAMES[3]])
    b, _, h, w = batch[0].shape
    assert out.heatmaps.shape == (b, 2, h, w)
    expected = SaliencyExplainer(lico.export(), "gradcam")(batch[0], [3] * b)
    torch.testing.assert_close(out.heatmaps[:, 1], expected)
    assert float(out.heatmaps.min()) >= 0.0 and float(out.heatmaps.max()) <= 1.0


def test_training_only_tensors_are_dropped_when_loading_without_clip(tiny_clip, batch):
    lico = make_module(tiny_clip)
    ckpt = {"state_dict": lico.trainable_state_dict(), "ramlico": {"label_names": {"train": NAMES}}}
    keys = set(ckpt["state_dict"])
    assert "lico_train.prompts.ctx" in keys and "lico_train.mm.tau_param" in keys
    assert not any(k.startswith("lico_train.prompts.text.") for k in keys)  # frozen: not saved
    fresh = LICOModule(TimmBackbone("test_resnet"), torch.optim.SGD, text_encoder=None,
                       lico={"enabled": False}, image_size=32)  # fmt: skip
    fresh.on_load_checkpoint(ckpt)  # builds the head from the saved names, drops lico_train.*
    fresh.load_state_dict(ckpt["state_dict"], strict=True)
    assert fresh.lico_train is None
    lico.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh.export()(batch[0]), lico.export()(batch[0]))


def test_temperature_is_excluded_from_weight_decay(tiny_clip):
    module = make_module(tiny_clip)
    opt = module.configure_optimizers()
    groups = opt.param_groups
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["params"] == [
        module.lico_train["mm"].tau_param
    ]
    assert groups[0]["weight_decay"] == 1e-4
    n_opt = sum(p.numel() for g in groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_fixmatch_cosine_schedule_values():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.03)
    sched = fixmatch_cosine_schedule(opt, total_steps=100)
    lrs = []
    for _ in range(101):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.03)
    assert lrs[100] == pytest.approx(0.03 * 0.19509032, rel=1e-6)  # cos(7 pi / 16)


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="model.lico.mm_repr"):
        LICOHParams(mm_repr="tokens")
    with pytest.raises(ValueError, match="unknown model.lico keys"):
        LICOHParams.from_any({"alpa": 1.0})
    with pytest.raises(ValueError, match="text_encoder"):
        LICOModule(TimmBackbone("test_resnet"), torch.optim.SGD, text_encoder=None)
    clf = LICOClassifier(TimmBackbone("test_resnet"), 3)
    with pytest.raises(ValueError, match="has 3 classes"):
        clf.set_num_classes(4)


def test_solver_is_one_solver_options_over_licos_preset():
    from ramlico.losses import LICO_SOLVER
    from ramlico.ot import SolverOptions

    assert LICOHParams().solver == LICO_SOLVER
    assert LICO_SOLVER.stop_metric == "potential_l1_sum" and LICO_SOLVER.stop_rule == "batch_mean"
    # a mapping (a config block without _target_) changes only the fields it names
    hp = LICOHParams.from_any({"solver": {"tol": 1e-3}})
    assert hp.solver == SolverOptions(**{**vars(LICO_SOLVER), "tol": 1e-3})
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['eps'\]; allowed"):
        LICOHParams.from_any({"solver": {"eps": 0.1}})
    with pytest.raises(ValueError, match="unknown model.lico keys \\['ot_reg'\\]"):
        LICOHParams.from_any({"ot_reg": 0.1})  # the old spelling is named


def test_misspelt_optimiser_or_scheduler_options_fail_when_built():
    encoder = TimmBackbone("test_resnet")
    with pytest.raises(TypeError, match=r"model.optimizer: SGD has no option\(s\) \['lrr'\]"):
        LICOModule(encoder, functools.partial(torch.optim.SGD, lrr=0.1), lico={"enabled": False})
    bad = functools.partial(fixmatch_cosine_schedule, cycle=0.4)
    with pytest.raises(TypeError, match=r"model.scheduler: fixmatch_cosine_schedule has no"):
        LICOModule(encoder, torch.optim.SGD, scheduler=bad, lico={"enabled": False})


def test_scheduler_gets_total_steps_only_if_it_takes_them():
    from ramlico.utils.optim import accepts

    assert accepts(functools.partial(fixmatch_cosine_schedule, cycles=0.4), "total_steps")
    assert not accepts(functools.partial(fixmatch_cosine_schedule, total_steps=5), "total_steps")
    assert not accepts(functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2),
                       "total_steps")  # fmt: skip


def test_vit_maps_are_channels_over_all_tokens_and_gradcam_uses_the_patch_grid(tiny_clip):
    from ramlico.explain import SaliencyExplainer

    torch.manual_seed(0)
    vit = TimmBackbone("test_vit", img_size=32)
    module = LICOModule(
        vit, torch.optim.SGD, text_encoder=lambda: tiny_clip, lico=dict(n_ctx=2), image_size=32
    )
    module.build(NAMES)
    x = torch.randn(2, 3, 32, 32)
    maps, pooled = module.classifier.features(x)
    dim = module.classifier.encoder.num_features
    assert maps.shape == (2, dim, 1 + 4) and pooled.shape == (2, dim)  # cls + 2 x 2 patches
    assert module.lico_train["mapping"].out_dim == 5  # d' = number of tokens (ViT)
    cams = SaliencyExplainer(module.export().eval(), "gradcam")(x)
    assert cams.shape == (2, 32, 32) and 0.0 <= cams.min() and cams.max() <= 1.0
