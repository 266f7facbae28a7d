"""Streaming sparse IN: drift-triggered refresh, and automatic relevance from feature statistics."""

import numpy as np
import pytest
import torch

from ibntrack.data.transforms import to_tensor
from ibntrack.engine.stream import StreamController, estimate_relevance, feature_shift, frame_statistics
from ibntrack.nn import build_model, fold_model, set_sparsity, stream_stats


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("resnet18-ibn", num_classes=1, emb_dim=8)
    m.train()
    for bn in m.modules():  # exact (cumulative) BN running statistics of the "training" images
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(2, 3, 64, 64) * 0.5)
    return m.eval()


def _scene(rng, brightness: float, n: int = 6) -> list[np.ndarray]:
    """A static textured background with a small object moving over it, at a given brightness."""
    bg = rng.integers(0, 120, (64, 64, 3)).astype(np.float32) + brightness
    frames = []
    for i in range(n):
        f = bg.copy()
        f[20:30, 5 + 3 * i : 15 + 3 * i] = 200 + brightness / 4
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def _run(model, frames, s, drift):
    net = fold_model(model)
    set_sparsity(net, s)
    ctl = StreamController(net, drift_threshold=drift)
    outs = []
    with torch.inference_mode():
        for f in frames:
            ctl.before_frame(f)
            outs.append(net(to_tensor(f)[None])["hm"])
            ctl.after_frame()
    return outs, ctl


def test_frame_statistics_by_hand():
    frame = np.zeros((36, 64, 3), np.uint8)
    frame[:, :32, 2] = 255  # red channel: half 1.0, half 0.0
    stats = frame_statistics(frame)
    assert stats[0].tolist() == pytest.approx([0.0, 0.0, 0.5])
    assert stats[1].tolist() == pytest.approx([0.0, 0.0, 0.5])


def test_static_scene_s5_equals_s1_and_never_forces(model):
    frames = _scene(np.random.default_rng(0), 40)
    exact, _ = _run(model, frames, 1, None)
    sparse, ctl = _run(model, frames, 5, 0.1)
    assert ctl.stats()["forced"] == 0 and ctl.stats()["refreshes"] == 2  # frames 0 and 5
    for a, b in zip(exact, sparse, strict=True):  # heatmap probabilities within 0.02
        assert torch.allclose(a.sigmoid(), b.sigmoid(), atol=0.02)


def test_cut_forces_a_refresh_that_restores_exact_outputs(model):
    rng = np.random.default_rng(1)
    frames = _scene(rng, 20, 4) + _scene(rng, 130, 4)  # light switched on at frame 4
    exact, _ = _run(model, frames, 1, None)
    no_event, _ = _run(model, frames, 10, None)
    event, ctl = _run(model, frames, 10, 0.1)
    assert ctl.stats()["forced"] == 1
    assert not torch.allclose(no_event[4], exact[4], atol=1e-3)  # stale statistics after the cut
    assert torch.allclose(event[4], exact[4], atol=1e-4)  # restored on the cut frame itself
    assert stream_stats(ctl.model)["refreshes"] == 2


def test_drift_threshold_validation(model):
    with pytest.raises(ValueError, match="drift_threshold"):
        StreamController(model, drift_threshold=0)


def test_relevance_ranks_the_training_style_first(model):
    torch.manual_seed(1)
    same = torch.randn(2, 3, 64, 64) * 0.5  # the "training" distribution
    shifted = torch.randn(2, 3, 64, 64) * 1.5 + 1.0  # another style
    assert feature_shift(model, same) < feature_shift(model, shifted)
    r_same, r_shift = estimate_relevance(model, same), estimate_relevance(model, shifted)
    assert 0 <= r_shift < r_same <= 1
    with pytest.raises(ValueError, match="tau"):
        estimate_relevance(model, same, tau=0)
