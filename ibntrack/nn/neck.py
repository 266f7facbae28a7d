"""Upsampling neck: fuses the backbone's strides 4, 8, 16, 32 into one stride-4 map.

FPN-style top-down path: every input gets a lateral ``1×1 conv → BN`` to ``out_channels``; from the
coarsest level down, the running map is upsampled ×2 (nearest neighbour), added to the next lateral and
smoothed by ``3×3 conv → BN → ReLU``. No deformable convolutions, so the network exports to ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FPNNeck"]

UPSAMPLE_FACTOR = 2.0  # consecutive backbone levels differ by stride 2


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPNNeck(nn.Module):
    """Top-down fusion of multi-scale features to stride 4.

    Args:
        in_channels: channels of the inputs, finest (stride 4) first, each next level at twice the stride.
        out_channels: channels of every lateral and of the output.

    Shapes:
        ``forward([Tensor[N, in_channels[i], H/4/2^i, W/4/2^i]]) -> Tensor[N, out_channels, H/4, W/4]``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError(f"in_channels needs at least 2 levels, got {tuple(in_channels)!r}")
        if out_channels <= 0:
            raise ValueError(f"out_channels must be positive, got {out_channels!r}")
        self.out_channels = out_channels
        self.lateral = nn.ModuleList(_conv_bn(c, out_channels, 1, relu=False) for c in in_channels)
        self.smooth = nn.ModuleList(
            _conv_bn(out_channels, out_channels, 3, relu=True) for _ in in_channels[:-1]
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if len(features) != len(self.lateral):
            raise ValueError(f"features needs {len(self.lateral)} maps, got {len(features)}")
        out = self.lateral[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            up = F.interpolate(out, scale_factor=UPSAMPLE_FACTOR, mode="nearest")  # [N, C, 2h, 2w]
            out = self.smooth[level](self.lateral[level](features[level]) + up)
        return out
