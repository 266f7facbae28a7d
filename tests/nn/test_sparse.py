"""Model-level sparse IN control: sparsity, reset, forced refresh, counters, stream states."""

import pytest
import torch
from torch import nn

from ibntrack.nn import (
    IBN,
    force_refresh,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_stats,
)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), IBN(8), nn.ReLU(), nn.Conv2d(8, 8, 1), IBN(8)).eval()


def test_set_sparsity_reaches_every_layer() -> None:
    net = _net()
    set_sparsity(net, 4)
    assert [m.sparsity for m in net if isinstance(m, IBN)] == [4, 4]


@pytest.mark.parametrize("s", [0, 2.0, None, False])
def test_set_sparsity_rejects(s: object) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        set_sparsity(_net(), s)


def test_stream_stats_reset_and_force() -> None:
    net = _net()
    set_sparsity(net, 5)
    assert stream_stats(net) == {"frames": 0, "refreshes": 0}
    net(torch.randn(10, 3, 8, 8))
    assert stream_stats(net) == {"frames": 10, "refreshes": 2}
    force_refresh(net)
    net(torch.randn(3, 3, 8, 8))  # refresh at frame 10 (forced), 11 and 12 reuse it
    assert stream_stats(net) == {"frames": 13, "refreshes": 3}
    reset_stream(net)
    assert stream_stats(net) == {"frames": 0, "refreshes": 0}
    assert stream_stats(nn.Conv2d(1, 1, 1)) == {"frames": 0, "refreshes": 0}


def test_one_model_serves_two_streams() -> None:
    net, ref_a, ref_b = _net(), _net(), _net()
    for m in (net, ref_a, ref_b):
        set_sparsity(m, 3)
    stream_a = [torch.randn(1, 3, 8, 8) for _ in range(4)]
    stream_b = [torch.randn(1, 3, 8, 8) * 2 + 1 for _ in range(4)]
    state_b = get_stream_state(net)  # fresh
    state_a = get_stream_state(net)
    for fa, fb in zip(stream_a, stream_b, strict=True):
        set_stream_state(net, state_a)
        out_a = net(fa)
        state_a = get_stream_state(net)
        set_stream_state(net, state_b)
        out_b = net(fb)
        state_b = get_stream_state(net)
        torch.testing.assert_close(out_a, ref_a(fa))
        torch.testing.assert_close(out_b, ref_b(fb))


def test_set_stream_state_checks_layers() -> None:
    with pytest.raises(ValueError, match="state"):
        set_stream_state(_net(), ())
