"""Insertion/Deletion AUC (docs/metrics.md) and Grad-CAM through pytorch-grad-cam."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ramlico.explain import SaliencyExplainer, evaluate_saliency
from ramlico.explain.saliency import gradcam_per_class
from ramlico.metrics.saliency import (
    auc_trapezoid,
    insertion_deletion,
    perturbation_scores,
    rise_blur_kernel,
)

SIG8 = 1 / (1 + math.exp(-8))  # sigmoid(8) = 0.9996646


class BlockModel(nn.Module):
    """Toy model of metrics.md example J: logits [2 * sum of the top-left 2x2 block, 0]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 2 * x[:, :, :2, :2].sum((1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=-1)


def test_auc_formula_matches_example_i():
    # n = 4: (0.1 + 0.5 + 0.8 + 0.9 + 0.95 - (0.1 + 0.95) / 2) / 4 = (3.25 - 0.525) / 4
    assert auc_trapezoid(torch.tensor([0.1, 0.5, 0.8, 0.9, 0.95])).item() == pytest.approx(0.68125)
    assert auc_trapezoid(torch.full((29,), 0.3)).item() == pytest.approx(0.3)


@pytest.fixture
def toy():
    image = torch.zeros(1, 4, 4)
    image[0, :2, :2] = 1.0  # O = flat indices 0, 1, 4, 5
    perfect = torch.zeros(4, 4)
    perfect[:2, :2] = 1.0  # O first (ties among the rest: ascending index)
    worst = 1.0 - perfect  # O last
    return BlockModel(), image, perfect, worst


def test_toy_example_j_perfect_and_worst_saliency(toy):
    model, image, perfect, worst = toy
    kw = dict(step=4, insertion_start="zeros")
    dele = perturbation_scores(model, image, perfect, "deletion", **kw)
    ins = perturbation_scores(model, image, perfect, "insertion", **kw)
    torch.testing.assert_close(dele, torch.tensor([SIG8, 0.5, 0.5, 0.5, 0.5]))
    torch.testing.assert_close(ins, torch.tensor([0.5, SIG8, SIG8, SIG8, SIG8]))
    good = insertion_deletion(model, image, perfect, **kw)
    bad = insertion_deletion(model, image, worst, **kw)
    # deletion: (sig8 + 4 * 0.5 - (sig8 + 0.5) / 2) / 4 = 0.5624581; insertion 0.9372066
    assert good["deletion"] == pytest.approx(0.5624581, abs=1e-6)
    assert good["insertion"] == pytest.approx(0.9372066, abs=1e-6)
    assert bad["deletion"] == pytest.approx(0.9372066, abs=1e-6)
    assert bad["insertion"] == pytest.approx(0.5624581, abs=1e-6)
    assert good["overall"] == pytest.approx(0.9372066 - 0.5624581, abs=1e-6)


def test_224_images_give_29_scores_with_1792_pixel_steps():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))
    image = torch.randn(3, 224, 224, generator=torch.Generator().manual_seed(0))
    sal = torch.rand(224, 224, generator=torch.Generator().manual_seed(1))
    scores = perturbation_scores(model, image, sal, "deletion")
    assert scores.shape == (29,)
    # the last deletion image is all zeros: its score equals the model on a zero image
    target = int(model(image[None]).argmax())
    last = torch.softmax(model(torch.zeros(1, 3, 224, 224)), -1)[0, target]
    assert scores[-1].item() == pytest.approx(last.item(), abs=1e-6)
    assert scores[0].item() == pytest.approx(
        torch.softmax(model(image[None]), -1)[0, target].item()
    )


def test_rise_blur_kernel_sums_to_one_and_is_symmetric():
    k = rise_blur_kernel()
    assert k.shape == (11, 11) and k.sum().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(k, k.T)
    torch.testing.assert_close(k, k.flip(0))


class TapModel(nn.Module):
    """1x1 conv -> feature_tap -> GAP -> linear: Grad-CAM has a closed form on it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1)
        self.feature_tap = nn.Identity()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.feature_tap(torch.relu(self.conv(x)))
        return self.head(a.mean((2, 3)))


def test_gradcam_equals_the_closed_form_on_a_linear_head():
    model = TapModel()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cams = SaliencyExplainer(model, "gradcam")(x, targets=[0, 2])
    a = torch.relu(model.conv(x)).detach()  # (B, 4, 8, 8) activations
    for i, c in enumerate([0, 2]):
        w = model.head.weight[c].detach() / 64  # d s_c / d A_k,p = W_ck / (H W)
        s = torch.relu((w[:, None, None] * a[i]).sum(0))
        for _ in range(2):  # the package min-max scales per layer, then after aggregation
            s = s - s.min()
            s = s / (s.max() + 1e-7)
        np.testing.assert_allclose(cams[i].numpy(), s.numpy(), atol=1e-5)


def test_gradcam_per_class_equals_the_package_class_by_class():
    """One forward pass for every class gives the package's maps (a forward + backward each)."""
    from ramlico.backbones import TimmBackbone
    from ramlico.methods.lico import LICOClassifier

    torch.manual_seed(0)
    encoder = TimmBackbone("test_resnet", zero_init_last=False, output_stride=16)
    resnet = LICOClassifier(encoder, num_classes=5)  # 4 x 4 maps at 64 px
    # ViTs, 4 x 4 patches: Grad-CAM at the last attention's input, class token or average pooled
    vit = LICOClassifier(TimmBackbone("test_vit", img_size=64), num_classes=5)
    vit_avg = LICOClassifier(TimmBackbone("test_vit", img_size=64, global_pool="avg"), 5)
    assert (
        vit.cam_layer is vit.encoder.model.blocks[-1].norm1
        and resnet.cam_layer is resnet.feature_tap
    )
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    classes = [2, 0, 2]
    for model in (TapModel(), resnet, vit, vit_avg):
        model.train()
        maps = gradcam_per_class(model, x, classes)
        assert model.training  # the mode is restored
        assert all(p.grad is None for p in model.parameters())  # the graph was cut at the tap
        assert maps.shape == (3, 3, 64, 64) and maps.dtype == torch.float32
        assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
        assert float(maps.std()) > 0.1  # real maps, not a constant
        for j, c in enumerate(classes):
            expected = SaliencyExplainer(model, "gradcam")(x, [c] * 3)
            torch.testing.assert_close(maps[:, j], expected, rtol=0, atol=1e-5)
    assert gradcam_per_class(resnet, x, []).shape == (3, 0, 64, 64)
    with pytest.raises(ValueError, match=r"classes \[5\] outside the model's 5 outputs"):
        gradcam_per_class(resnet, x, [1, 5])
    with pytest.raises(ValueError, match="feature_tap"):
        gradcam_per_class(nn.Linear(3, 3), x, [0])


def test_other_cams_and_the_evaluation_loop(tmp_path):
    model = TapModel().eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    for method in ("gradcam++", "scorecam"):
        cams = SaliencyExplainer(model, method)(x)
        assert cams.shape == (4, 8, 8) and 0.0 <= cams.min() and cams.max() <= 1.0
    data = list(zip(x, [0, 1, 2, 0], strict=True))
    out = evaluate_saliency(model, data, ["gradcam"], num_images=3, step=8, png_dir=tmp_path,
                            num_png=2)  # fmt: skip
    assert set(out) == {f"saliency/gradcam/{k}" for k in ("insertion", "deletion", "overall")}
    assert 0 <= out["saliency/gradcam/deletion"] <= 100
    assert out["saliency/gradcam/overall"] == pytest.approx(
        out["saliency/gradcam/insertion"] - out["saliency/gradcam/deletion"]
    )
    assert sorted(p.name for p in (tmp_path / "gradcam").iterdir()) == ["0000.png", "0001.png"]
    with pytest.raises(ValueError, match="unknown saliency method"):
        SaliencyExplainer(model, "rise")
    with pytest.raises(ValueError, match="feature_tap"):
        SaliencyExplainer(nn.Linear(3, 3), "gradcam")
