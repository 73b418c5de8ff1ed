"""FrozenModule: the explicit frozen mark; frozen parts stay out of checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ramlico.backbones import CLIPBackbone
from ramlico.utils.frozen import FrozenModule, frozen_submodules


class Encoder(FrozenModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder().freeze()
        self.head = nn.Linear(2, 1)
        self.unfrozen = Encoder()  # a FrozenModule not frozen: trained and checkpointed
        self.look_alike = nn.Linear(2, 2)
        self.look_alike.frozen = True  # an attribute is no mark: it is checkpointed


def test_freeze_stops_gradients_and_keeps_eval_mode():
    model = Model().train()
    assert model.encoder.is_frozen and not model.unfrozen.is_frozen
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not model.encoder.training and not model.encoder.net[2].training  # BN stats fixed
    assert model.head.training and model.unfrozen.training
    x = torch.randn(4, 2)
    torch.testing.assert_close(model.encoder.net(x), model.encoder.net(x))  # dropout off
    assert list(frozen_submodules(model)) == ["encoder"]


def test_a_frozen_module_with_a_trainable_parameter_is_refused():
    model = Model()
    model.encoder.net[0].weight.requires_grad_(True)
    with pytest.raises(ValueError, match=r"encoder is frozen .* encoder.net.0.weight requires"):
        frozen_submodules(model)


def test_nested_frozen_modules_are_reported_once(tiny_clip):
    outer = nn.ModuleDict({"clip": tiny_clip})
    assert list(frozen_submodules(outer)) == ["clip"]
    assert not CLIPBackbone("ramlico-tiny-ViT", pretrained=None, freeze=False).is_frozen


def test_ram_checkpoints_leave_out_exactly_the_frozen_parts(tiny_clip):
    from ramlico.methods import RAM

    ram = RAM(tiny_clip, saa_layers=[0, 1], tss_layers=[1], visual_prompt_layers=[1],
              text_prompt_layers=[1])  # fmt: skip
    assert ram.frozen_prefixes() == ["backbone.", "text_tower."]
    kept = ram.trainable_state_dict()
    assert not any(k.startswith(("backbone.", "text_tower.")) for k in kept)
    assert {n for n, p in ram.named_parameters() if p.requires_grad} <= set(kept)
