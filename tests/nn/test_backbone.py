"""ResNet(-IBN) backbone: IBN placement, channels, strides, parameter counts."""

import pytest
import torch
from torch import nn

from ibntrack.nn.backbone import build_resnet
from ibntrack.nn.norm import IBN


def _first_norms(net: nn.Module, stage: int) -> list[nn.Module]:
    return [block.bn1 for block in getattr(net, f"layer{stage}")]


def test_ibn_in_first_stage_norm_of_layers_1_to_3() -> None:
    net = build_resnet(18)
    for stage in (1, 2, 3):
        assert all(isinstance(n, IBN) for n in _first_norms(net, stage))
    assert all(type(n) is nn.BatchNorm2d for n in _first_norms(net, 4))
    assert type(net.bn1) is nn.BatchNorm2d  # stem
    ibn_count = sum(isinstance(m, IBN) for m in net.modules())
    assert ibn_count == 6  # 2 blocks x 3 stages, only bn1
    assert net.layer1[0].bn1.in_channels == 32 and net.layer3[1].bn1.in_channels == 128


def test_ibn_stages_configurable() -> None:
    net = build_resnet(18, ibn_stages=(False, True, False, True), ibn_ratio=0.25)
    assert [isinstance(_first_norms(net, s)[0], IBN) for s in (1, 2, 3, 4)] == [False, True, False, True]
    assert net.layer2[0].bn1.in_channels == 32  # round(0.25 * 128)
    plain = build_resnet(18, ibn=False)
    assert not any(isinstance(m, IBN) for m in plain.modules())


def test_bottleneck_ibn_only_in_bn1() -> None:
    net = build_resnet(50)
    block = net.layer2[0]
    assert isinstance(block.bn1, IBN) and block.bn1.channels == 128
    assert type(block.bn2) is nn.BatchNorm2d and type(block.bn3) is nn.BatchNorm2d
    assert net.out_channels == [256, 512, 1024, 2048]


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_resnet50_ibn_has_exactly_resnet50_parameters() -> None:
    assert _count(build_resnet(50)) == _count(build_resnet(50, ibn=False))
    assert _count(build_resnet(18, ibn_ratio=0.3)) == _count(build_resnet(18, ibn=False))


def test_mix_mode_adds_gate_and_in_affine() -> None:
    plain = _count(build_resnet(18, ibn=False))
    mix = _count(build_resnet(18, ibn_mode="mix"))
    first_norm_channels = 64 * 2 + 128 * 2 + 256 * 2  # bn1 of 2 blocks in layer1-3
    assert mix - plain == 3 * first_norm_channels  # gate + IN weight + IN bias per channel


def test_outputs_at_strides_4_to_32() -> None:
    net = build_resnet(18).eval()
    assert net.out_channels == [64, 128, 256, 512]
    feats = net(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 16, 24),
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    ]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"depth": 20}, "depth"),
        ({"depth": 18, "ibn_stages": (True,)}, "ibn_stages"),
        ({"depth": 18, "ibn_ratio": 2.0}, "ratio"),
        ({"depth": 18, "ibn_mode": "x"}, "mode"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        build_resnet(**kwargs)
