"""fold_model: equality with the unfolded model under sparse streaming; BN and IN really folded."""

import copy
import functools

import pytest
import torch
from torch import nn

from ibntrack.nn import (
    IBN,
    TrackerNet,
    build_model,
    fold_model,
    force_refresh,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_stats,
)
from ibntrack.nn.fold import FoldedConvIBN

TOL = 1e-4


def _trained(arch: str, **options: object) -> TrackerNet:
    """A fresh copy of a small model whose norms are far from identity."""
    return copy.deepcopy(_trained_cached(arch, tuple(sorted(options.items()))))


@functools.cache
def _trained_cached(arch: str, options: tuple) -> TrackerNet:
    """A few train steps (non-trivial running stats), then perturbed affine params."""
    options = dict(options)
    torch.manual_seed(0)
    model = build_model(arch, emb_dim=16, neck_channels=16, head_conv=16, **options).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 64, 64) * 1.5 + 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | IBN):
                for p in m.parameters():
                    p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    ("arch", "options"), [("resnet18-ibn", {}), ("resnet18", {}), ("resnet18-ibn", {"ibn_mode": "mix"})]
)
def test_folded_equals_unfolded_streaming_s3(arch: str, options: dict) -> None:
    model = _trained(arch, **options)
    folded = fold_model(model)
    assert isinstance(folded, TrackerNet)
    inside_ibn = {id(c) for m in folded.modules() if isinstance(m, IBN) for c in m.modules()}
    assert not any(type(m) is nn.BatchNorm2d and id(m) not in inside_ibn for m in folded.modules())
    if arch.endswith("-ibn"):
        assert all(isinstance(block.conv1, FoldedConvIBN) for block in folded.backbone.layer1)
        assert all(isinstance(block.bn1, nn.Identity) for block in folded.backbone.layer1)
    set_sparsity(model, 3)
    set_sparsity(folded, 3)
    frames = [torch.randn(1, 3, 64, 64) * (1 + 0.2 * t) + 0.1 * t for t in range(5)]
    paths = []
    with torch.no_grad():
        for frame in frames:
            _assert_same(model(frame), folded(frame))
            paths.append({m.last_path for m in folded.modules() if isinstance(m, FoldedConvIBN)})
    if arch.endswith("-ibn"):
        assert stream_stats(folded) == stream_stats(model) == {"frames": 5, "refreshes": 2}
        assert paths == [{"refresh"}, {"folded"}, {"folded"}, {"refresh"}, {"folded"}]


def test_folded_batch_and_force_refresh() -> None:
    model = _trained("resnet18-ibn", ibn_ratio=0.25)
    folded = fold_model(model)
    set_sparsity(model, 3)
    set_sparsity(folded, 3)
    x = torch.randn(5, 3, 64, 64) + torch.linspace(-1, 1, 5)[:, None, None, None]
    with torch.no_grad():
        _assert_same(model(x[:2]), folded(x[:2]))  # refresh at 0
        _assert_same(model(x[2:]), folded(x[2:]))  # cached at 2, refresh at 3
        force_refresh(model)
        force_refresh(folded)
        _assert_same(model(x[:1]), folded(x[:1]))
        assert stream_stats(folded) == {"frames": 6, "refreshes": 3}
        reset_stream(folded)
        assert stream_stats(folded)["frames"] == 0


def test_state_moves_between_folded_and_unfolded() -> None:
    model = _trained("resnet18-ibn")
    folded = fold_model(model)
    set_sparsity(model, 4)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
        set_stream_state(folded, get_stream_state(model))
        set_sparsity(folded, 4)
        x = torch.randn(1, 3, 64, 64)
        _assert_same(model(x), folded(x))  # both reuse the cached statistics of the first frame


def test_fold_leaves_original_untouched() -> None:
    model = _trained("resnet18-ibn")
    n_bn = sum(type(m) is nn.BatchNorm2d for m in model.modules())
    fold_model(model)
    assert sum(type(m) is nn.BatchNorm2d for m in model.modules()) == n_bn
    assert not any(isinstance(m, FoldedConvIBN) for m in model.modules())


def test_switching_streams_reuses_each_streams_folded_weights() -> None:
    """Two cameras on one folded model: after one frame each, alternating frames refold nothing."""
    folded = fold_model(_trained("resnet18-ibn"))
    set_sparsity(folded, 100)
    layer = next(m for m in folded.modules() if isinstance(m, FoldedConvIBN))
    frames = {cam: torch.randn(1, 3, 64, 64) * (1 + cam) for cam in (0, 1)}
    states, weights = {}, {}
    with torch.no_grad():
        for cam in (0, 1):  # each stream: a refresh frame, then a cached frame that folds its statistics
            reset_stream(folded)
            folded(frames[cam])
            folded(frames[cam])
            states[cam] = get_stream_state(folded)
            weights[cam] = layer._static_weights()[0]
        assert not torch.equal(weights[0], weights[1])
        for cam in (0, 1, 0, 1):
            set_stream_state(folded, states[cam])
            folded(frames[cam])
            assert layer.last_path == "folded"
            assert layer._static_weights()[0] is weights[cam]  # memoised per stream, not recomputed
            states[cam] = get_stream_state(folded)
