"""ResNet-18/34/50/101 feature extractor with IBN-a in the first-stage norm of its residual blocks.

Each block takes a ``first_norm`` factory (``channels -> nn.Module``) for the norm after its first conv —
the patent's *first-stage network* ``conv → norm → ReLU`` — and a ``norm_layer`` factory for every other
norm. ``partial(IBN, ratio=0.5)`` as ``first_norm`` gives IBN-a; ``nn.BatchNorm2d`` the plain ResNet.
The stem and the downsampling shortcuts always use BN.

Modules that :func:`ibntrack.nn.fold.fold_model` can fold list their ``(conv, norm)`` attribute pairs in
``fold_pairs`` (``nn.Sequential`` pairs are found by position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import Tensor, nn

from ibntrack.nn.norm import IBN

__all__ = ["BasicBlock", "Bottleneck", "DEPTHS", "NormFactory", "ResNet", "build_resnet"]

NormFactory = Callable[[int], nn.Module]

STAGE_PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
STEM_CHANNELS = 64


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """``3×3 conv → first_norm → ReLU → 3×3 conv → BN`` plus the shortcut, then ReLU (ResNet-18/34)."""

    expansion = 1
    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        first_norm: NormFactory = nn.BatchNorm2d,
        norm_layer: NormFactory = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = first_norm(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """``1×1 conv → first_norm → ReLU → 3×3 conv → BN → ReLU → 1×1 conv → BN`` + shortcut, ReLU.

    ResNet-50/101; the stride sits on the 3×3 conv (ResNet v1.5, as torchvision).
    """

    expansion = 4
    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        first_norm: NormFactory = nn.BatchNorm2d,
        norm_layer: NormFactory = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = first_norm(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk returning the outputs of its four stages.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        stage_norms: per stage, the ``first_norm`` factory of every block of that stage (4 entries).
        norm_layer: factory of every other norm (stem, second stage, shortcuts).
        width: channel multiplier of the stem and every stage (1.0 = the standard ResNet; 0.5 halves
            every width, quartering parameters and compute — a CPU-sized model).

    Shapes:
        ``forward(x: Tensor[N, 3, H, W]) -> [Tensor[N, C_i, H/s_i, W/s_i]]`` for strides ``s = 4, 8, 16, 32``
        and ``C_i = out_channels[i] = (64, 128, 256, 512)·expansion``.
    """

    fold_pairs = (("conv1", "bn1"),)

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        stage_norms: Sequence[NormFactory],
        norm_layer: NormFactory = nn.BatchNorm2d,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width!r}")
        stem = max(8, int(round(STEM_CHANNELS * width)))
        planes_per_stage = [max(8, int(round(p * width))) for p in STAGE_PLANES]
        if len(layers) != 4 or len(stage_norms) != 4:
            raise ValueError(
                f"layers and stage_norms need 4 entries, got {len(layers)} and {len(stage_norms)}"
            )
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = stem
        stages = []
        for planes, stride, blocks, first_norm in zip(
            planes_per_stage, STAGE_STRIDES, layers, stage_norms, strict=True
        ):
            stages.append(
                self._make_stage(block, in_channels, planes, blocks, stride, first_norm, norm_layer)
            )
            in_channels = planes * block.expansion
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self._out_channels = [planes * block.expansion for planes in planes_per_stage]
        self._init_weights()

    @staticmethod
    def _make_stage(
        block: type[BasicBlock] | type[Bottleneck],
        in_channels: int,
        planes: int,
        blocks: int,
        stride: int,
        first_norm: NormFactory,
        norm_layer: NormFactory,
    ) -> nn.Sequential:
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(_conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))
        layers = [block(in_channels, planes, stride, downsample, first_norm, norm_layer)]
        layers += [block(out_channels, planes, 1, None, first_norm, norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def out_channels(self) -> list[int]:
        """Channels of the four outputs (strides 4, 8, 16, 32)."""
        return list(self._out_channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # stride 4
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


def build_resnet(
    depth: int,
    ibn: bool = True,
    ibn_ratio: float = 0.5,
    ibn_mode: str = "split",
    ibn_stages: Sequence[bool] = (True, True, True, False),
    width: float = 1.0,
) -> ResNet:
    """A randomly initialised ResNet-``depth`` (no pretrained weights).

    Args:
        depth: 18, 34, 50 or 101.
        ibn: put :class:`IBN` in the first-stage norm of the stages flagged by ``ibn_stages``;
            False gives the plain BN ResNet (the other ``ibn_*`` arguments are then ignored).
        ibn_ratio: IN fraction of the split mode.
        ibn_mode: ``"split"`` (IBN-a) or ``"mix"``.
        ibn_stages: one flag per stage layer1–layer4.
        width: channel multiplier (see :class:`ResNet`).

    Raises:
        ValueError: unknown depth or an ``ibn_stages`` that is not 4 flags.
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    if len(ibn_stages) != 4:
        raise ValueError(f"ibn_stages needs 4 flags (layer1-layer4), got {tuple(ibn_stages)!r}")
    block, layers = DEPTHS[depth]
    ibn_norm = partial(IBN, ratio=ibn_ratio, mode=ibn_mode)
    stage_norms = [ibn_norm if ibn and flag else nn.BatchNorm2d for flag in ibn_stages]
    return ResNet(block, layers, stage_norms, width=width)
