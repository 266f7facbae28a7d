"""ResNet-18/34/50/101 feature extractor with IBN-a or IBN-b instance normalization.

Each block takes a ``first_norm`` factory (``channels -> nn.Module``) for the norm after its first conv —
the patent's *first-stage network* ``conv → norm → ReLU`` — a ``norm_layer`` factory for every other
norm, and an optional ``out_norm`` factory for a norm after the residual addition (before the last ReLU).
Two placements of instance normalization (IBN-Net, Pan et al., ECCV 2018), chosen by
:func:`build_resnet`'s ``placement``:

* ``"a"`` (IBN-a, the patent's network): ``partial(IBN, ratio=0.5)`` as ``first_norm`` of every block of
  the flagged stages; the stem keeps BN.
* ``"b"`` (IBN-b, beyond the patent): all-IN layers (:data:`INSTANCE_NORM`, an :class:`IBN` with ratio 1)
  in place of the stem's BN and as ``out_norm`` of the *last* block of layer1 and layer2
  (:data:`IBN_B_STAGES`), as IBN-Net's ``resnet*_ibn_b``; no IN inside the blocks.

The downsampling shortcuts always use BN. Every IN layer is an :class:`IBN`, so it follows the model's
refresh schedule (sparse IN) like the IN half of an IBN-a layer.

Modules that :func:`ibntrack.nn.fold.fold_model` can fold list their ``(conv, norm)`` attribute pairs in
``fold_pairs`` (``nn.Sequential`` pairs are found by position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import Tensor, nn

from ibntrack.nn.norm import IBN

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DEPTHS",
    "IBN_B_STAGES",
    "IBN_PLACEMENTS",
    "INSTANCE_NORM",
    "NormFactory",
    "ResNet",
    "build_resnet",
]

NormFactory = Callable[[int], nn.Module]

IBN_PLACEMENTS = ("a", "b")
INSTANCE_NORM: NormFactory = partial(IBN, ratio=1.0, mode="split")
"""All-IN norm (every channel instance-normalized, with affine; the sparse-IN cache of :class:`IBN`)."""
IBN_B_STAGES = (True, True, False, False)
"""IBN-b: the stages (layer1–layer4) whose last block has IN after its residual addition."""

STAGE_PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
STEM_CHANNELS = 64


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """``3×3 conv → first_norm → ReLU → 3×3 conv → BN`` plus the shortcut, then ``out_norm``, ReLU.

    ResNet-18/34. ``out_norm`` (IBN-b's IN after the addition) is absent (None) unless given.
    """

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
        out_norm: NormFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = first_norm(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.out_norm = None if out_norm is None else out_norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + identity
        if self.out_norm is not None:
            out = self.out_norm(out)
        return self.relu(out)


class Bottleneck(nn.Module):
    """``1×1 conv → first_norm → ReLU → 3×3 conv → BN → ReLU → 1×1 conv → BN`` + shortcut, ``out_norm``, ReLU.

    ResNet-50/101; the stride sits on the 3×3 conv (ResNet v1.5, as torchvision). ``out_norm`` (IBN-b's
    IN after the addition, over ``4·planes`` channels) is absent (None) unless given.
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
        out_norm: NormFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = first_norm(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.out_norm = None if out_norm is None else out_norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + identity
        if self.out_norm is not None:
            out = self.out_norm(out)
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet trunk returning the outputs of its four stages.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        stage_norms: per stage, the ``first_norm`` factory of every block of that stage (4 entries).
        norm_layer: factory of every other norm (stem, second stage, shortcuts).
        stem_norm: factory of the stem's norm after ``conv1``; None = ``norm_layer``.
        stage_out_norms: per stage, the ``out_norm`` factory of the stage's *last* block or None (4
            entries); None = no norm after any residual addition.
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
        stem_norm: NormFactory | None = None,
        stage_out_norms: Sequence[NormFactory | None] | None = None,
    ) -> None:
        super().__init__()
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width!r}")
        stem = max(8, int(round(STEM_CHANNELS * width)))
        planes_per_stage = [max(8, int(round(p * width))) for p in STAGE_PLANES]
        out_norms = (None,) * 4 if stage_out_norms is None else tuple(stage_out_norms)
        if len(layers) != 4 or len(stage_norms) != 4 or len(out_norms) != 4:
            raise ValueError(
                f"layers, stage_norms and stage_out_norms need 4 entries, got {len(layers)}, "
                f"{len(stage_norms)} and {len(out_norms)}"
            )
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = (norm_layer if stem_norm is None else stem_norm)(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = stem
        stages = []
        for planes, stride, blocks, first_norm, out_norm in zip(
            planes_per_stage, STAGE_STRIDES, layers, stage_norms, out_norms, strict=True
        ):
            stages.append(
                self._make_stage(block, in_channels, planes, blocks, stride, first_norm, norm_layer, out_norm)
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
        out_norm: NormFactory | None = None,
    ) -> nn.Sequential:
        """``blocks`` blocks; ``out_norm`` goes to the last one only (IBN-b)."""
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(_conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))
        layers = []
        for i in range(blocks):
            last_norm = out_norm if i == blocks - 1 else None
            layers.append(
                block(
                    in_channels if i == 0 else out_channels,
                    planes,
                    stride if i == 0 else 1,
                    downsample if i == 0 else None,
                    first_norm,
                    norm_layer,
                    last_norm,
                )
            )
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
    placement: str = "a",
) -> ResNet:
    """A randomly initialised ResNet-``depth`` (no pretrained weights).

    Args:
        depth: 18, 34, 50 or 101.
        ibn: use instance normalization where ``placement`` says; False gives the plain BN ResNet (the
            other ``ibn_*`` arguments and ``placement`` are then ignored).
        ibn_ratio: IN fraction of the split mode (placement ``"a"``).
        ibn_mode: ``"split"`` (IBN-a) or ``"mix"`` (placement ``"a"``).
        ibn_stages: one flag per stage layer1–layer4 (placement ``"a"``).
        width: channel multiplier (see :class:`ResNet`).
        placement: ``"a"``: :class:`IBN` in the first-stage norm of the stages flagged by ``ibn_stages``
            (IBN-a); ``"b"``: all-IN in the stem and after the residual addition of the last block of
            layer1 and layer2 (IBN-b; ``ibn_ratio``, ``ibn_mode`` and ``ibn_stages`` are ignored).

    Raises:
        ValueError: unknown depth or placement, or an ``ibn_stages`` that is not 4 flags.
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    if len(ibn_stages) != 4:
        raise ValueError(f"ibn_stages needs 4 flags (layer1-layer4), got {tuple(ibn_stages)!r}")
    if placement not in IBN_PLACEMENTS:
        raise ValueError(f"placement must be one of {IBN_PLACEMENTS}, got {placement!r}")
    block, layers = DEPTHS[depth]
    plain = [nn.BatchNorm2d] * 4
    if ibn and placement == "b":
        out_norms = [INSTANCE_NORM if flag else None for flag in IBN_B_STAGES]
        return ResNet(block, layers, plain, width=width, stem_norm=INSTANCE_NORM, stage_out_norms=out_norms)
    if not ibn:
        return ResNet(block, layers, plain, width=width)
    ibn_norm = partial(IBN, ratio=ibn_ratio, mode=ibn_mode)
    stage_norms = [ibn_norm if flag else nn.BatchNorm2d for flag in ibn_stages]
    return ResNet(block, layers, stage_norms, width=width)
