"""WideResNet-28-w for 32 px inputs (CIFAR/SVHN), registered in timm as ``wrn28_2_cifar`` etc.

timm has no CIFAR-style WRN, which LICO uses for CIFAR-10/100 and SVHN (docs/lico.md):
a 3x3 stem with 16 channels, three stages of ``(depth - 4) / 6`` pre-activation basic blocks with
widths ``16w, 32w, 64w`` and strides 1, 2, 2, then BN + LeakyReLU(0.1) (the LICO tap point,
``(B, 64w, 8, 8)`` at 32 px), global average pooling and a linear layer. BN momentum 0.001 and
eps 0.001; Kaiming-normal (fan_out) convolutions, Xavier-normal linear with zero bias.

Registering makes ``TimmBackbone("wrn28_8_cifar")`` work; importing :mod:`ramlico.methods.lico`
(or this module) registers the names.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

__all__ = ["CifarWideResNet"]

Tensor = torch.Tensor


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.001, eps=0.001)


class _Block(nn.Module):
    """Pre-activation basic block: BN-LReLU-conv3x3-BN-LReLU-conv3x3 + (1x1 conv) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, activate_before_residual: bool) -> None:
        super().__init__()
        self.bn1, self.act1 = _bn(cin), nn.LeakyReLU(0.1)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.act2 = _bn(cout), nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if cin == cout else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        self.activate_before_residual = activate_before_residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(x))
        if self.shortcut is not None and self.activate_before_residual:
            x = out
        y = self.conv2(self.act2(self.bn2(self.conv1(out))))
        return y + (x if self.shortcut is None else self.shortcut(x))


class CifarWideResNet(nn.Module):
    """WRN-depth-width for 32 px images with timm's classifier API.

    Args:
        depth: 6n + 4 (28 -> 4 blocks per stage).
        widen_factor: ``w``.
        num_classes: classes of the linear head (0 = no head, pooled features out).
        in_chans: input channels.
    """

    def __init__(
        self, depth: int = 28, widen_factor: int = 2, num_classes: int = 0, in_chans: int = 3
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 (e.g. 28), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            blocks = [
                _Block(widths[i] if j == 0 else widths[i + 1], widths[i + 1],
                       stride if j == 0 else 1, activate_before_residual=i == 0)
                for j in range(n)
            ]  # fmt: skip
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final_bn, self.final_act = _bn(widths[3]), nn.LeakyReLU(0.1)
        self.num_features = widths[3]
        self.num_classes = num_classes
        self.fc = nn.Linear(widths[3], num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, 64w, H/4, W/4)`` after the final BN + LeakyReLU."""
        return self.final_act(self.final_bn(self.stages(self.stem(x))))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        pooled = x.mean((2, 3))
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _create(depth: int, width: int, pretrained: bool, **kwargs: Any) -> CifarWideResNet:
    if pretrained:
        raise ValueError("no pretrained weights exist for the CIFAR WRN; use pretrained=false")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return CifarWideResNet(depth, width, **kwargs)


@register_model
def wrn28_2_cifar(pretrained: bool = False, **kwargs: Any) -> CifarWideResNet:
    """WRN-28-2 (CIFAR-10, SVHN): 1.5M parameters, (B, 128, 8, 8) maps at 32 px."""
    return _create(28, 2, pretrained, **kwargs)


@register_model
def wrn28_8_cifar(pretrained: bool = False, **kwargs: Any) -> CifarWideResNet:
    """WRN-28-8 (CIFAR-100): 23M parameters, (B, 512, 8, 8) maps at 32 px."""
    return _create(28, 8, pretrained, **kwargs)
