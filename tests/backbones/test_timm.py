from __future__ import annotations

import pytest
import torch

from ramlico.backbones import TimmBackbone


def test_resnet_feature_map_is_flattened_last_stage():
    net = TimmBackbone("resnet18")
    x = torch.randn(2, 3, 64, 64)
    fmap = net.feature_map(x)
    assert fmap.shape == (2, 512, 4)  # 64 px / stride 32 = 2x2 positions
    torch.testing.assert_close(fmap, net.model.forward_features(x).flatten(2))
    torch.testing.assert_close(net(x), fmap.mean(-1))  # global average pooling head


def test_vit_feature_map_drops_prefix_tokens():
    net = TimmBackbone("vit_tiny_patch16_224", img_size=32)
    x = torch.randn(2, 3, 32, 32)
    tokens = net.model.forward_features(x)
    assert net.num_prefix_tokens == 1
    torch.testing.assert_close(net.feature_map(x), tokens[:, 1:].transpose(1, 2))
    assert net.feature_map(x).shape == (2, 192, 4)


def test_local_weights_file_and_freezing(tmp_path):
    src = TimmBackbone("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(src.model.state_dict(), path)
    torch.manual_seed(123)
    loaded = TimmBackbone("resnet18", pretrained=str(path), freeze=True)
    pairs = zip(src.model.state_dict().items(), loaded.model.state_dict().values(), strict=True)
    for (name, p), q in pairs:
        assert torch.equal(p, q), name
    assert not any(p.requires_grad for p in loaded.parameters())
    loaded.train()
    assert not loaded.model.training


def test_bad_names_and_paths():
    with pytest.raises(ValueError, match="unknown timm model 'resnet19'"):
        TimmBackbone("resnet19")
    with pytest.raises(FileNotFoundError, match="timm weights file not found"):
        TimmBackbone("resnet18", pretrained="/nonexistent/weights.pth")


def test_bundled_tag_loads_the_shipped_file_and_unknown_tags_are_named(tmp_path):
    from safetensors.torch import load_file

    from ramlico.backbones import bundled_weights
    from ramlico.backbones.registry import TOY_VFM

    net = TimmBackbone(TOY_VFM, pretrained="toy", freeze=True)
    shipped = load_file(str(bundled_weights(TOY_VFM, "toy")))
    state = net.model.state_dict()
    assert set(state) == set(shipped)  # the feature extractor, no classifier head
    for name, value in shipped.items():
        assert torch.equal(state[name], value.float() if value.is_floating_point() else value)
    with pytest.raises(FileNotFoundError, match=r"bundled tags of this model: \['toy'\]"):
        TimmBackbone(TOY_VFM, pretrained="openai")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        TimmBackbone("resnet18", pretrained=str(tmp_path / "missing.pth"))


def test_none_model_kwargs_take_the_architecture_default():
    net = TimmBackbone("resnet18", img_size=None)  # a CNN has no img_size
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 512)
