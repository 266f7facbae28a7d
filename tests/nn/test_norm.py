"""IBN: hand-computed IN/BN, split sizes, mix gate, sparse and streaming IN statistics."""

import math

import pytest
import torch
import torch.nn.functional as F

from ibntrack.nn.norm import IBN, StreamState

EPS = 1e-5


def _two_by_two() -> torch.Tensor:
    """x[N=2, C=2, 2, 2]; channel 0 goes to IN, channel 1 to BN (ratio 0.5)."""
    x = torch.zeros(2, 2, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 3.0], [1.0, 3.0]])  # IN: mu 2, var 1
    x[1, 0] = torch.tensor([[0.0, 4.0], [0.0, 4.0]])  # IN: mu 2, var 4
    x[0, 1] = 1.0  # BN over both images: mu 2, biased var 1, unbiased var 8/7
    x[1, 1] = 3.0
    return x


def test_split_in_and_bn_match_hand_formulas() -> None:
    ibn = IBN(2, ratio=0.5, eps=EPS)
    with torch.no_grad():
        ibn.in_weight.fill_(2.0)
        ibn.in_bias.fill_(0.5)
    y = ibn.train()(_two_by_two())
    a, b = 1 / math.sqrt(1 + EPS), 2 / math.sqrt(4 + EPS)  # x_hat = (x - mu) / sqrt(var + eps)
    expected_in0 = torch.tensor([[-a, a], [-a, a]]) * 2 + 0.5  # y = gamma * x_hat + beta
    expected_in1 = torch.tensor([[-b, b], [-b, b]]) * 2 + 0.5
    torch.testing.assert_close(y[0, 0], expected_in0)
    torch.testing.assert_close(y[1, 0], expected_in1)
    torch.testing.assert_close(y[0, 1], torch.full((2, 2), -a))
    torch.testing.assert_close(y[1, 1], torch.full((2, 2), a))
    # running stats after one step, momentum 0.1: mean 0.1 * 2, var 0.9 * 1 + 0.1 * 8/7
    torch.testing.assert_close(ibn.bn.running_mean, torch.tensor([0.2]))
    torch.testing.assert_close(ibn.bn.running_var, torch.tensor([0.9 + 0.1 * 8 / 7]))
    # eval: BN uses running stats, IN still per image
    y_eval = ibn.eval()(_two_by_two())
    rm, rv = 0.2, 0.9 + 0.1 * 8 / 7
    torch.testing.assert_close(y_eval[1, 1], torch.full((2, 2), (3 - rm) / math.sqrt(rv + EPS)))
    torch.testing.assert_close(y_eval[1, 0], expected_in1)


@pytest.mark.parametrize(("ratio", "k"), [(0.25, 16), (0.75, 48), (0.0, 0), (1.0, 64), (0.5, 32)])
def test_split_sizes(ratio: float, k: int) -> None:
    ibn = IBN(64, ratio=ratio)
    assert ibn.in_channels == k
    assert ibn.bn_channels == 64 - k
    assert ibn.in_weight.numel() == k
    assert sum(p.numel() for p in ibn.parameters()) == 2 * 64  # same as BatchNorm2d(64)
    x = torch.randn(3, 64, 5, 6) * 3 + 1
    y = ibn.train()(x)
    torch.testing.assert_close(y[:, :k], F.instance_norm(x[:, :k], eps=ibn.eps))
    torch.testing.assert_close(y[:, k:], F.batch_norm(x[:, k:], None, None, training=True, eps=ibn.eps))


def test_mix_mode_blends_in_and_bn() -> None:
    ibn = IBN(4, mode="mix").train()
    assert ibn.in_channels == 4 and ibn.bn_channels == 4
    x = torch.randn(3, 4, 5, 5) * 2 + 1
    inst = F.instance_norm(x, eps=ibn.eps)
    batch = F.batch_norm(x, None, None, training=True, eps=ibn.eps)
    torch.testing.assert_close(ibn(x), 0.5 * inst + 0.5 * batch)  # gate_logit 0 -> g = 0.5
    with torch.no_grad():
        ibn.gate_logit.copy_(torch.tensor([100.0, -100.0, 0.0, math.log(3.0)]))  # g = 1, 0, 1/2, 3/4
    y = ibn(x)
    torch.testing.assert_close(y[:, 0], inst[:, 0])
    torch.testing.assert_close(y[:, 1], batch[:, 1])
    torch.testing.assert_close(y[:, 3], 0.75 * inst[:, 3] + 0.25 * batch[:, 3])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"channels": 0}, "channels"),
        ({"channels": 4, "ratio": 1.5}, "ratio"),
        ({"channels": 4, "ratio": -0.1}, "ratio"),
        ({"channels": 4, "mode": "b"}, "mode"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        IBN(**kwargs)


@pytest.mark.parametrize("s", [0, -1, 1.5, True, "2"])
def test_bad_sparsity(s: object) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        IBN(4).sparsity = s


def _normalise(x: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """IN of x[C, H, W] with the statistics of ref[C, H, W] (unit affine)."""
    mean = ref.mean(dim=(1, 2), keepdim=True)
    var = ref.var(dim=(1, 2), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


@pytest.mark.parametrize(("s", "computed"), [(5, 2), (2, 5), (3, 4), (1, 10), (10, 1), (20, 1)])
def test_sparse_counts(s: int, computed: int) -> None:
    ibn = IBN(4, ratio=1.0).eval()
    ibn.sparsity = s
    ibn(torch.randn(10, 4, 3, 3))
    assert ibn.last_computed == computed
    assert ibn.stream_state.refreshes == computed
    assert ibn.stream_state.frames == 10


def test_sparse_uses_nearest_preceding_statistics() -> None:
    ibn = IBN(4, ratio=1.0).eval()
    ibn.sparsity = 5
    x = torch.randn(10, 4, 3, 3) * 2 + torch.arange(10.0)[:, None, None, None]
    y = ibn(x)
    for i in range(10):
        ref = x[0] if i < 5 else x[5]
        torch.testing.assert_close(y[i], _normalise(x[i], ref))


def test_reused_statistics_of_identical_images_equal_exact_in() -> None:
    ibn = IBN(8, ratio=0.5).eval()
    ibn.sparsity = 5
    x = (torch.randn(1, 8, 4, 4) * 3).expand(10, -1, -1, -1)
    torch.testing.assert_close(ibn(x)[:, :4], F.instance_norm(x[:, :4], eps=EPS))


def test_s1_equals_exact_in() -> None:
    ibn = IBN(6, ratio=0.5).eval()
    x = torch.randn(10, 6, 5, 5) * 4 - 2
    torch.testing.assert_close(ibn(x)[:, :3], F.instance_norm(x[:, :3], eps=EPS), atol=1e-5, rtol=0)


def test_training_mode_ignores_sparsity() -> None:
    ibn = IBN(4, ratio=1.0).train()
    ibn.sparsity = 5
    x = torch.randn(10, 4, 3, 3) + torch.arange(10.0)[:, None, None, None]
    torch.testing.assert_close(ibn(x), F.instance_norm(x, eps=EPS))
    assert ibn.stream_state.frames == 0


def test_streaming_batch1_with_s3() -> None:
    ibn = IBN(4, ratio=1.0).eval()
    ibn.sparsity = 3
    frames = [torch.randn(1, 4, 3, 3) * (t + 1) + t for t in range(5)]
    outs = [ibn(f) for f in frames]
    refreshes = []
    for t, f in enumerate(frames):  # frames 0 and 3 recompute, 1, 2 use frame 0, 4 uses frame 3
        ref = frames[0] if t < 3 else frames[3]
        torch.testing.assert_close(outs[t][0], _normalise(f[0], ref[0]))
    ibn.reset_stream()
    for f in frames:
        ibn(f)
        refreshes.append(ibn.stream_state.refreshes)
    assert refreshes == [1, 1, 1, 2, 2]


def test_streaming_split_across_calls_matches_one_batch() -> None:
    x = torch.randn(7, 4, 3, 3) + torch.arange(7.0)[:, None, None, None]
    one, many = IBN(4, ratio=1.0).eval(), IBN(4, ratio=1.0).eval()
    one.sparsity = many.sparsity = 3
    y = torch.cat([many(x[:2]), many(x[2:5]), many(x[5:])])
    torch.testing.assert_close(y, one(x))


def test_force_refresh_restarts_schedule() -> None:
    ibn = IBN(4, ratio=1.0).eval()
    ibn.sparsity = 3
    frames = [torch.randn(1, 4, 3, 3) + t for t in range(6)]
    ibn(frames[0])
    ibn.force_refresh()
    outs = [ibn(f) for f in frames[1:]]  # recompute at 1, reuse at 2, 3, recompute at 4
    sources = [1, 1, 1, 4, 4]
    for out, t, src in zip(outs, range(1, 6), sources, strict=True):
        torch.testing.assert_close(out[0], _normalise(frames[t][0], frames[src][0]))
    assert ibn.stream_state.refreshes == 3


def test_reset_stream_clears_cache() -> None:
    ibn = IBN(4, ratio=1.0).eval()
    ibn.sparsity = 4
    ibn(torch.randn(2, 4, 3, 3))
    ibn.reset_stream()
    assert ibn.stream_state == StreamState()
    x = torch.randn(1, 4, 3, 3) + 5
    torch.testing.assert_close(ibn(x), F.instance_norm(x, eps=EPS))


def test_affine_matches_eval_forward_on_skipped_frame() -> None:
    for mode in ("split", "mix"):
        ibn = IBN(6, ratio=0.5, mode=mode)
        ibn.train()(torch.randn(4, 6, 3, 3) * 2 + 1)  # non-trivial running stats
        with torch.no_grad():
            for p in ibn.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        ibn.eval().sparsity = 4
        with pytest.raises(RuntimeError):
            ibn.affine()
        ibn(torch.randn(1, 6, 3, 3))
        x = torch.randn(1, 6, 3, 3) * 3
        scale, shift = ibn.affine()
        assert scale.shape == shift.shape == (6,)
        expected = x * scale[None, :, None, None] + shift[None, :, None, None]
        torch.testing.assert_close(ibn(x), expected)
