"""IBN-b (``resnetNN-ibnb``): IN placement, shapes, sparse IN, folding, ONNX export, checkpoints."""

import copy
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from ibntrack.nn import (
    IBN,
    ModelConfig,
    TrackerNet,
    build_model,
    fold_model,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_stats,
)
from ibntrack.nn.backbone import build_resnet
from ibntrack.nn.checkpoint import CheckpointError, load_model, save_checkpoint
from ibntrack.nn.fold import FoldedConvIBN

TOL = 1e-4
INPUT_SIZE = (64, 96)  # (H, W)
TINY = {"emb_dim": 8, "neck_channels": 8, "head_conv": 8, "width": 0.25}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Single-threaded torch: intra-op threads on a busy shared CPU are far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _in_layers(net: nn.Module) -> dict[str, int]:
    """``{module name: channels}`` of the IBN layers of ``net``."""
    return {name: m.channels for name, m in net.named_modules() if isinstance(m, IBN)}


def _count(net: nn.Module, kind: type[nn.Module]) -> int:
    return sum(type(m) is kind for m in net.modules())


def _params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@functools.cache
def _trained_cached(arch: str) -> TrackerNet:
    """A tiny model after a few train steps (non-trivial BN statistics), affine parameters perturbed."""
    torch.manual_seed(0)
    model = build_model(arch, **TINY).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, *INPUT_SIZE) * 1.5 + 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | IBN):
                for p in m.parameters():
                    p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def _trained(arch: str) -> TrackerNet:
    return copy.deepcopy(_trained_cached(arch))


def _frames(n: int) -> list[torch.Tensor]:
    """Frames whose statistics differ from one another: frame ``t`` is ``(1 + t)·base + t``."""
    base = torch.linspace(-1.0, 1.0, 3 * INPUT_SIZE[0] * INPUT_SIZE[1]).reshape(1, 3, *INPUT_SIZE)
    base = base * torch.cos(torch.arange(INPUT_SIZE[1]) * 0.7)  # some spatial structure
    return [(1.0 + t) * base + t for t in range(n)]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() == {"hm", "wh", "reg", "id"}
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=TOL, rtol=TOL)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ------------------------------------------------------------------------------------------- placement
def test_resnet18_ibnb_has_in_in_the_stem_and_after_the_last_adds_of_layer1_layer2() -> None:
    net = build_resnet(18, placement="b")
    # stem 64; layer1 = 2 BasicBlocks of 64 -> IN after the add of block 1; layer2 (128) likewise
    assert _in_layers(net) == {"bn1": 64, "layer1.1.out_norm": 64, "layer2.1.out_norm": 128}
    assert all(m.bn is None and m.in_channels == m.channels for m in net.modules() if isinstance(m, IBN))
    assert all(type(block.bn1) is nn.BatchNorm2d for s in (1, 2, 3, 4) for block in getattr(net, f"layer{s}"))
    with_out_norm = [
        f"layer{s}.{i}"
        for s in (1, 2, 3, 4)
        for i, block in enumerate(getattr(net, f"layer{s}"))
        if block.out_norm is not None
    ]
    assert with_out_norm == ["layer1.1", "layer2.1"]
    # BN: 20 in ResNet-18 (stem + 2 per block x 8 + 3 shortcuts), the stem's is now IN
    assert _count(build_resnet(18, ibn=False), nn.BatchNorm2d) == 20
    assert _count(net, nn.BatchNorm2d) == 19
    # the stem IN replaces a BN (same 2·64 affine parameters); each added IN brings 2·C
    assert _params(net) - _params(build_resnet(18, ibn=False)) == 2 * (64 + 128)


def test_resnet50_ibnb_places_in_on_the_expanded_channels_of_the_last_blocks() -> None:
    net = build_resnet(50, placement="b")
    # layer1 = 3 Bottlenecks (out 256) -> block 2; layer2 = 4 Bottlenecks (out 512) -> block 3
    assert _in_layers(net) == {"bn1": 64, "layer1.2.out_norm": 256, "layer2.3.out_norm": 512}
    assert _count(build_resnet(50, ibn=False), nn.BatchNorm2d) == 53  # 1 + 3 x 16 + 4
    assert _count(net, nn.BatchNorm2d) == 52
    assert _params(net) - _params(build_resnet(50, ibn=False)) == 2 * (256 + 512)
    assert net.out_channels == [256, 512, 1024, 2048]


def test_ibnb_arch_builds_the_ibnb_backbone_at_any_width() -> None:
    model = build_model("resnet18-ibnb", **TINY)
    assert model.config.uses_ibn and model.config.ibn_placement == "b"
    # width 0.25: stem 16, layer1 16, layer2 32 channels
    expected = {"backbone.bn1": 16, "backbone.layer1.1.out_norm": 16, "backbone.layer2.1.out_norm": 32}
    assert _in_layers(model) == expected
    # the ibn_* fields shape IBN-a only
    odd = build_model("resnet18-ibnb", ibn_mode="mix", ibn_ratio=0.25, ibn_stages=(True,) * 4, **TINY)
    assert _in_layers(odd) == expected
    assert build_model("resnet18-ibn", **TINY).config.ibn_placement == "a"
    assert build_model("resnet18", **TINY).config.ibn_placement is None


def test_in_sits_after_the_residual_add_and_before_the_last_relu() -> None:
    net = build_resnet(18, placement="b").train()
    block = net.layer1[1]
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        block.out_norm.in_weight.zero_()  # IN output = in_bias, whatever went in (the identity included)
        block.out_norm.in_bias.fill_(-1.0)
        assert torch.equal(block(x), torch.zeros_like(x))  # the ReLU comes after the IN
        block.out_norm.in_bias.fill_(2.0)
        assert torch.equal(block(x), torch.full_like(x, 2.0))  # nothing is added after the IN


@pytest.mark.parametrize(("arch", "channels"), [("resnet18-ibnb", 16), ("resnet50-ibnb", 64)])
def test_output_shapes(arch: str, channels: int) -> None:
    model = build_model(arch, **TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *INPUT_SIZE))
    h, w = INPUT_SIZE[0] // 4, INPUT_SIZE[1] // 4
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "hm": (2, 1, h, w),
        "wh": (2, 4, h, w),
        "reg": (2, 2, h, w),
        "id": (2, 8, h, w),
    }
    assert model.backbone.out_channels == [channels, 2 * channels, 4 * channels, 8 * channels]


def test_bad_arch_error_lists_the_ibnb_archs() -> None:
    with pytest.raises(ValueError, match="arch must be one of") as err:
        ModelConfig(arch="resnet18-ibnc")
    for name in ("resnet18-ibnb", "resnet34-ibnb", "resnet50-ibnb", "resnet101-ibnb"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="placement"):
        build_resnet(18, placement="c")


# ------------------------------------------------------------------------------------------- sparse IN
def test_s2_reuses_the_statistics_on_frame_1_and_refreshes_on_frame_2() -> None:
    exact = _trained("resnet18-ibnb")  # IN recomputed every frame (s = 1)
    sparse = _trained("resnet18-ibnb")
    set_sparsity(sparse, 2)
    frames = _frames(3)
    with torch.no_grad():
        ref = []
        for x in frames[:2]:
            ref.append(exact(x))
            exact_state = get_stream_state(exact)
        ref.append(exact(frames[2]))
        out = [sparse(frames[0])]
        after_0 = get_stream_state(sparse)
        out.append(sparse(frames[1]))
        after_1 = get_stream_state(sparse)
        out.append(sparse(frames[2]))
    assert len(after_0) == 3  # stem, layer1.1.out_norm, layer2.1.out_norm
    _assert_same(out[0], ref[0])  # refresh
    assert _max_diff(out[1], ref[1]) > 1e-2  # frame 1 is normalized with frame 0's statistics ...
    for a, b, e in zip(after_0, after_1, exact_state, strict=True):  # ... which every IN layer kept
        assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)
        assert not torch.allclose(a.mean, e.mean)  # while exact IN moved on to frame 1's
    _assert_same(out[2], ref[2])  # refresh
    assert stream_stats(sparse) == {"frames": 3, "refreshes": 2}


def test_cached_frame_equals_a_frame_normalized_with_the_earlier_statistics() -> None:
    sparse = _trained("resnet18-ibnb")
    set_sparsity(sparse, 2)
    frames = _frames(2)
    with torch.no_grad():
        sparse(frames[0])
        state = get_stream_state(sparse)
        cached = sparse(frames[1])
        # s = 5 and frame 0's statistics restored, then one more frame: a cached frame again
        other = _trained("resnet18-ibnb")
        set_sparsity(other, 5)
        other(frames[0] * 0.1)  # some other frame's statistics first ...
        set_stream_state(other, state)  # ... replaced by frame 0's
        _assert_same(other(frames[1]), cached)


# -------------------------------------------------------------------------------------------- folding
@pytest.mark.parametrize("arch", ["resnet18-ibnb", "resnet50-ibnb"])
def test_folded_equals_unfolded_streaming_s3(arch: str) -> None:
    model = _trained(arch)
    folded = fold_model(model)
    assert isinstance(folded.backbone.conv1, FoldedConvIBN)  # stem conv + IN folded
    assert isinstance(folded.backbone.bn1, nn.Identity)
    inside_ibn = {id(c) for m in folded.modules() if isinstance(m, IBN) for c in m.modules()}
    assert not any(type(m) is nn.BatchNorm2d and id(m) not in inside_ibn for m in folded.modules())
    assert len(_in_layers(folded)) == 3  # the IN after the adds stays a (sparse) IBN layer
    set_sparsity(model, 3)
    set_sparsity(folded, 3)
    paths = []
    with torch.no_grad():
        for x in _frames(5):
            _assert_same(model(x), folded(x))
            paths.append(folded.backbone.conv1.last_path)
    assert paths == ["refresh", "folded", "folded", "refresh", "folded"]
    assert stream_stats(folded) == stream_stats(model) == {"frames": 5, "refreshes": 2}


def test_stream_state_moves_between_folded_and_unfolded() -> None:
    model = _trained("resnet18-ibnb")
    folded = fold_model(model)
    set_sparsity(model, 4)
    set_sparsity(folded, 4)
    frames = _frames(3)
    with torch.no_grad():
        model(frames[0])
        set_stream_state(folded, get_stream_state(model))
        for x in frames[1:]:
            _assert_same(model(x), folded(x))
    assert folded.backbone.conv1.last_path == "folded"


# ------------------------------------------------------------------------------------------ checkpoint
def _payload(model: TrackerNet) -> dict:
    return {
        "format_version": 1,
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "class_names": ["pedestrian"],
        "input_size": list(INPUT_SIZE),
        "num_ids": 5,
    }


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _trained("resnet18-ibnb")
    keys = set(model.state_dict())
    assert {"backbone.bn1.in_weight", "backbone.bn1.in_bias"} <= keys
    assert {"backbone.layer1.1.out_norm.in_weight", "backbone.layer2.1.out_norm.in_bias"} <= keys
    assert not any(k.startswith("backbone.bn1.running") for k in keys)  # the stem has no BN now
    assert not any(".out_norm." in k for k in build_model("resnet18-ibn", **TINY).state_dict())
    path = save_checkpoint(tmp_path / "ibnb.pt", _payload(model))
    loaded, ckpt = load_model(path)
    assert loaded.config == model.config and ckpt["model_config"]["arch"] == "resnet18-ibnb"
    assert set(loaded.state_dict()) == keys
    reset_stream(model)
    with torch.no_grad():
        x = _frames(1)[0]
        _assert_same(loaded.eval()(x), model(x))


def test_an_ibn_a_checkpoint_does_not_load_as_ibnb(tmp_path: Path) -> None:
    payload = _payload(build_model("resnet18-ibn", **TINY))
    payload["model_config"] = {**payload["model_config"], "arch": "resnet18-ibnb"}
    path = save_checkpoint(tmp_path / "ibn.pt", payload)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_model(path)


# ------------------------------------------------------------------------------------------------ ONNX
def test_onnx_export_matches_torch_streaming_s3(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ibntrack.export import export_model
    from ibntrack.runtime import OnnxBackend

    model = _trained("resnet18-ibnb")
    report = export_model(model, tmp_path / "ibnb.onnx", INPUT_SIZE)  # runs the export check too
    assert report.ibn_layers == 3 and report.max_abs_diff is not None and report.max_abs_diff < 1e-3
    runner = OnnxBackend(report.path, threads=1)
    layers = runner.meta["ibn_layers"]
    assert [(d["name"], d["in_channels"]) for d in layers] == [
        ("backbone", 16),  # the stem's conv1 + IN (a conv-IBN pair, named without ".conv1")
        ("backbone.layer1.1.out_norm", 16),
        ("backbone.layer2.1.out_norm", 32),
    ]
    folded = fold_model(model)
    for m in (folded, runner):
        set_sparsity(m, 3)
        reset_stream(m)
    paths = []
    with torch.no_grad():
        for x in _frames(5):
            _assert_same(runner(x), folded(x))
            paths.append(runner.last_path)
    assert paths == ["refresh", "cached", "cached", "refresh", "cached"]
    # the stream state moves between the backends: same layers, same order
    reset_stream(folded)
    reset_stream(runner)
    with torch.no_grad():
        folded(_frames(1)[0])
        set_stream_state(runner, get_stream_state(folded))
        x = _frames(3)[2]
        _assert_same(runner(x), folded(x))
    assert runner.last_path == "cached"
