"""The RAM LightningModule: outputs, gradient flow, optimiser groups, schedule, lean state."""

from __future__ import annotations

import functools
import io

import pytest
import torch
from timm.scheduler import CosineLRScheduler

from ramlico.backbones import CLIPBackbone
from ramlico.losses import mmc_loss
from ramlico.methods import RAM
from ramlico.utils.schedule import warmup_cosine_lr, warmup_cosine_scheduler

NAMES = ["red circle", "blue square", "green star", "yellow cross"]


def reference_optimizer(**lrs: float) -> dict[str, functools.partial]:
    """The reference recipe as the factories configs/model/ram.yaml builds."""
    return {
        "adapters": functools.partial(
            torch.optim.AdamW, lr=lrs.get("adapters", 5e-6), weight_decay=1e-4
        ),
        "temperatures": functools.partial(
            torch.optim.AdamW, lr=lrs.get("temperatures", 5e-5), weight_decay=1e-4
        ),
        "prompts": functools.partial(
            torch.optim.SGD, lr=lrs.get("prompts", 1e-3), momentum=0.9, weight_decay=1e-4
        ),
    }


def _ram(backbone: CLIPBackbone, **kw) -> RAM:
    torch.manual_seed(0)
    args = dict(saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1], text_prompt_layers=[1],
                optimizer=reference_optimizer())  # fmt: skip
    args.update(kw)
    return RAM(backbone, **args)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0]])
    return torch.randn(2, 3, 64, 64, generator=g), y


def test_forward_shapes_and_inference_fusion(tiny_clip, batch):
    model = _ram(tiny_clip).eval()
    with torch.no_grad():
        out = model(batch[0], NAMES)
    assert out["s_glb"].shape == out["s_loc"].shape == (2, 4)
    assert out["similarity"].shape == out["plan"].shape == (2, 16, 4)
    fused = 0.5 * (out["s_glb"].softmax(-1) + out["s_loc"].softmax(-1))
    torch.testing.assert_close(out["scores"], fused)
    torch.testing.assert_close(out["scores"].sum(-1), torch.ones(2))
    # local logits = plan-weighted similarity / tau_loc; plan columns carry 1 / C
    torch.testing.assert_close(out["s_loc"], (out["plan"] * out["similarity"]).sum(1) / 2e-3)
    torch.testing.assert_close(out["plan"].sum(1), torch.full((2, 4), 0.25), rtol=0, atol=1e-6)
    assert out["teacher_plan"] is None


def test_only_side_network_prompts_and_temperatures_get_gradients(tiny_clip, batch):
    model = _ram(tiny_clip).train()
    out = model(batch[0], NAMES, targets=batch[1])
    assert out["teacher_plan"] is not None
    (mmc_loss(out["s_glb"], batch[1]) + mmc_loss(out["s_loc"], batch[1])).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    got = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert got == trainable
    assert all(n.startswith(("ladder.", "text_prompts.", "tau_")) for n in trainable)
    assert all(not n.startswith("backbone.") for n in got)
    groups = model.param_groups()
    n_group = sum(p.numel() for g in groups.values() for p in g)
    assert n_group == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_optimiser_step_leaves_frozen_weights_unchanged(tiny_clip, batch):
    model = _ram(tiny_clip).train()
    frozen = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    combined = model.configure_optimizers()["optimizer"]
    adapters, temperatures, sgd = combined.optimizers
    assert [g["name"] for g in combined.param_groups] == ["adapters", "temperatures", "prompts"]
    assert isinstance(adapters, torch.optim.AdamW) and isinstance(temperatures, torch.optim.AdamW)
    assert [g["lr"] for g in combined.param_groups] == [5e-6, 5e-5, 1e-3]
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    prompts = model.text_prompts.prompts["1"].detach().clone()
    out = model(batch[0], NAMES, targets=batch[1])
    (mmc_loss(out["s_glb"], batch[1]) + mmc_loss(out["s_loc"], batch[1])).backward()
    combined.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.backbone.named_parameters())
    assert not torch.equal(model.text_prompts.prompts["1"], prompts)


def test_schedule_matches_the_reference_table():
    table = {
        5e-6: [2.000e-6, 3.500e-6, 4.970e-6, 4.946e-6, 4.917e-6, 4.880e-6],
        5e-5: [1.700e-5, 3.350e-5, 4.969e-5, 4.945e-5, 4.915e-5, 4.878e-5],
        1e-3: [3.337e-4, 6.668e-4, 9.938e-4, 9.891e-4, 9.830e-4, 9.755e-4],
    }
    for base, lrs in table.items():
        got = [warmup_cosine_lr(e, base) for e in range(1, 7)]
        assert got == pytest.approx(lrs, rel=1e-3)


@pytest.mark.parametrize(
    ("bases", "kw"),
    [
        # reference: 3 warm-up epochs from 5e-7, cosine over 60 epochs towards 1e-7
        ((5e-6, 5e-5, 1e-3), dict(warmup_epochs=3, warmup_lr=5e-7, min_lr=1e-7, max_epochs=60)),
        # ram_demo: 1 warm-up epoch, 10-epoch cosine (past max_epochs: min_lr)
        ((1e-2, 1e-3, 0.1), dict(warmup_epochs=1, warmup_lr=1e-4, min_lr=1e-5, max_epochs=10)),
    ],
)
def test_timm_schedule_equals_the_formula_every_epoch_and_group(tiny_clip, bases, kw):
    lrs = dict(zip(("adapters", "temperatures", "prompts"), bases, strict=True))
    model = _ram(tiny_clip, optimizer=reference_optimizer(**lrs),
                 scheduler=functools.partial(warmup_cosine_scheduler, **kw))  # fmt: skip
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(sched, CosineLRScheduler)  # timm's scheduler computes the formula
    assert conf["lr_scheduler"]["interval"] == "epoch"
    counter = _EpochCounter()
    model.trainer = counter  # what lr_scheduler_step reads from Lightning (held weakly)
    for epoch in range(1, 2 * kw["max_epochs"] + 1):  # RAM's t of the epoch now running
        for group in opt.param_groups:  # every group of all three inner optimisers
            expected = warmup_cosine_lr(epoch, lrs[group["name"]], **kw)
            assert group["lr"] == expected, (epoch, group["name"])  # the same arithmetic
        inner = [g["lr"] for o in opt.optimizers for g in o.param_groups]
        assert inner == [g["lr"] for g in opt.param_groups]
        model.lr_scheduler_step(sched, None)  # as Lightning calls it at the end of the epoch
        counter.current_epoch += 1
    # The state (saved in checkpoints; plain numbers and lists for weights_only loading) gives a
    # fresh scheduler the same rates: a resumed run steps it from the restored epoch count.
    state = sched.state_dict()
    assert "optimizer" not in state
    torch.save(state, buf := io.BytesIO())
    buf.seek(0)
    fresh = _ram(tiny_clip, optimizer=reference_optimizer(**lrs),
                 scheduler=functools.partial(warmup_cosine_scheduler, **kw))  # fmt: skip
    conf2 = fresh.configure_optimizers()
    conf2["lr_scheduler"]["scheduler"].load_state_dict(torch.load(buf, weights_only=True))
    conf2["lr_scheduler"]["scheduler"].step(7)
    sched.step(7)
    assert [g["lr"] for g in conf2["optimizer"].param_groups] == [g["lr"] for g in opt.param_groups]


class _EpochCounter:
    """The part of a Trainer that ``RamlicoModule.lr_scheduler_step`` reads."""

    current_epoch = 0
    global_step = 0


def test_twenty_steps_give_a_finite_decreasing_loss(tiny_clip, batch):
    optimizer = reference_optimizer(adapters=1e-2, temperatures=1e-2)
    model = _ram(tiny_clip, template="{}", tau_loc=0.01, optimizer=optimizer).train()
    opt = model.configure_optimizers()["optimizer"]
    images, y = batch
    losses = []
    for _ in range(20):
        out = model(images, NAMES, targets=y)
        loss = mmc_loss(out["s_glb"], y) + mmc_loss(out["s_loc"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1


def test_prompt_length_zero_gives_frozen_clip_label_features(tiny_clip):
    model = _ram(tiny_clip, text_prompt_len=0, visual_prompt_len=0)
    tokens = tiny_clip.tokenize([f"A photo of a {n}." for n in NAMES])
    torch.testing.assert_close(model.label_features(NAMES), tiny_clip.model.encode_text(tokens))
    assert len(model.text_prompts.prompts) == 0 and len(model.ladder.visual_prompts) == 0


def test_trainable_state_holds_no_frozen_weight(tiny_clip):
    model = _ram(tiny_clip)
    state = model.trainable_state_dict()
    assert state and not any(k.startswith("backbone.") for k in state)
    params = {n for n, p in model.named_parameters() if p.requires_grad}
    assert params <= set(state)
    # BatchNorm running statistics of the TSS adapters are kept (needed at inference)
    assert any(k.endswith("running_mean") for k in state)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "text_layers", "expected"),
    [
        ("coco", [9, 10, 11], 13_016_174),
        ("nus", [6, 7, 8, 9, 10, 11], 13_022_318),
    ],
)
def test_vit_b16_trainable_parameter_count(dataset, text_layers, expected):
    backbone = CLIPBackbone("ViT-B-16-quickgelu", pretrained=None)
    model = RAM(backbone, text_prompt_layers=text_layers)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert sum(p.numel() for p in model.ladder.tss.parameters()) == 12_991_596


def test_logits_and_plan_are_fp32_under_bf16_autocast(tiny_clip, batch):
    model = _ram(tiny_clip).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch[0], NAMES, targets=batch[1])
    for key in ("s_glb", "s_loc", "similarity", "plan", "teacher_plan"):
        assert out[key].dtype == torch.float32, key
    assert torch.isfinite(out["s_loc"]).all()
    torch.testing.assert_close(out["plan"].sum(1), torch.full((2, 4), 0.25), rtol=0, atol=1e-6)


_TYPO_SGD = functools.partial(torch.optim.SGD, lr=1e-3, momentum=0.9, nesterv=1)


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"optimizer": {**reference_optimizer(), "prompts": _TYPO_SGD}}, TypeError,
     r"model.optimizer.prompts: SGD has no option\(s\) \['nesterv'\]; allowed: .*'nesterov'"),
    ({"optimizer": {"adapters": torch.optim.AdamW, "prompt": torch.optim.SGD}},
     ValueError, r"missing \['prompts', 'temperatures'\], unknown \['prompt'\]"),
    ({"scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step=3)}, TypeError,
     r"model.scheduler: StepLR has no option\(s\) \['step'\]; allowed: .*'step_size'"),
    ({"kcot": {"epsilon": 0.1}}, TypeError, r"KCOTConfig: unknown option\(s\) \['epsilon'\]; "
                                            r"allowed: \['beta', 'fill', 'scale', 'sharpen'"),
    ({"kcot": {"solver": {"rge": 0.1}}}, TypeError,
     r"SolverOptions: unknown option\(s\) \['rge'\]"),
    ({"kcot": {"fill": "batch_max"}}, ValueError, "kcot fill='batch_max' is not supported"),
    ({"lla_combine": "avg"}, ValueError, "lla_combine"),
])  # fmt: skip
def test_misspelt_options_are_named(tiny_clip, kw, error, match):
    with pytest.raises(error, match=match):
        _ram(tiny_clip, **kw)


def test_training_needs_optimiser_factories(tiny_clip):
    model = _ram(tiny_clip, optimizer=None)  # inference / evaluation only
    with pytest.raises(ValueError, match="without optimiser factories"):
        model.configure_optimizers()


def test_teacher_label_features_are_the_unit_frozen_prompt_embeddings(tiny_clip):
    model = _ram(tiny_clip)
    tokens = tiny_clip.tokenize([f"A photo of a {n}." for n in NAMES])
    expected = torch.nn.functional.normalize(tiny_clip.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(model.teacher_label_features(NAMES), expected)
