"""Test-time BN adaptation (``--adapt-bn K``): statistics by hand, folding, freezing, reset, sparse IN."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from ibntrack.cli import build_parser
from ibntrack.cli.flags import flag_overrides
from ibntrack.cli.track import _tracker_kwargs
from ibntrack.config import InferenceConfig, load_inference_config
from ibntrack.engine.infer import Tracker
from ibntrack.nn import IBN, build_model, fold_model, get_stream_state, stream_stats
from ibntrack.nn.adapt import DEFAULT_ADAPT_PRIOR, BNAdapter
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.runtime import TorchBackend, open_backend
from ibntrack.runtime.base import StreamBackend
from tests.tiny import TINY_INPUT, save_tiny_checkpoint

EPS = 1e-5  # BatchNorm2d's default


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _ConvNorm(nn.Module):
    """``norm(conv(x))`` with a 1x1 conv copying input channel 0 into each output channel times a gain."""

    fold_pairs = (("conv", "norm"),)

    def __init__(self, norm: nn.Module, gains: tuple[float, ...]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, len(gains), 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 0, 0] = torch.tensor(gains)
        self.norm = norm

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"hm": self.norm(self.conv(x))}


def _one_bn() -> _ConvNorm:
    return _ConvNorm(nn.BatchNorm2d(1), (1.0,)).eval()  # source statistics: mean 0, var 1


def _frame(value: float) -> Tensor:
    """``[1, 3, 32, 32]``: channel 0 constant ``value``, the others 0."""
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0] = value
    return x


def _bn_stats(backend: TorchBackend) -> list[float]:
    """The running means, then the running variances, of the adapted network's first BatchNorm."""
    assert backend.adapter is not None
    bn = next(m for m in backend.adapter.model.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.running_mean is not None and bn.running_var is not None
    return bn.running_mean.tolist() + bn.running_var.tolist()


# ------------------------------------------------------------------------------------ hand-derived
@pytest.mark.parametrize(
    "prior, expected",
    [
        # prior N = 2 frames of (mean 0, var 1); frames 1, 2, 3 (each constant: its own variance is 0)
        # t=0: n=1, (μ_t, σ_t²) = (1, 0):      μ = (0·2 + 1·1)/3 = 1/3, σ² = (2·1 + 1·0)/3 = 2/3
        # t=1: n=2, (1.5, 0.25):             μ = 3/4,                 σ² = (2 + 2·0.25)/4 = 5/8
        # t=2: n=3, (2, 2/3):                μ = 6/5,                 σ² = (2 + 3·2/3)/5 = 4/5
        (2.0, [(1 / 3, 2 / 3), (3 / 4, 5 / 8), (6 / 5, 4 / 5)]),
        (0.0, [(1.0, 0.0), (1.5, 0.25), (2.0, 2 / 3)]),  # no prior: the frames' own statistics
    ],
)
def test_single_bn_statistics_and_outputs_by_hand(prior: float, expected: list[tuple[float, float]]) -> None:
    backend = TorchBackend(_one_bn(), adapt_bn=3, adapt_bn_prior=prior)  # folded (the default)
    for t, (c, (mean, var)) in enumerate(zip((1.0, 2.0, 3.0), expected, strict=True)):
        out = backend(_frame(c))["hm"]
        assert _bn_stats(backend) == pytest.approx([mean, var], abs=1e-6), t
        # frame t is normalised with the statistics of frames 0..t (no look-ahead)
        assert out.flatten()[0].item() == pytest.approx((c - mean) / math.sqrt(var + EPS), abs=1e-4), t
    assert not backend.adapting
    # frozen and folded: a frame of 10 uses the statistics of the 3 adapted frames, and changes nothing
    mean, var = expected[-1]
    for _ in range(2):
        out = backend(_frame(10.0))["hm"]
        assert out.flatten()[0].item() == pytest.approx((10 - mean) / math.sqrt(var + EPS), rel=1e-5)
        assert _bn_stats(backend) == pytest.approx([mean, var], abs=1e-6)
    assert type(backend.model.conv) is nn.Conv2d and isinstance(backend.model.norm, nn.Identity)


def test_pooled_variance_counts_pixels_within_and_across_frames() -> None:
    # frame 0: half the pixels 0, half 2 (mean 1, var 1); frame 1: constant 3 (mean 3, var 0)
    # pooled over both frames' pixels: mean 2, var = (1 + 0)/2 + ((1-2)² + (3-2)²)/2 = 1.5
    first = torch.zeros(1, 3, 32, 32)
    first[:, 0, :16] = 2.0
    backend = TorchBackend(_one_bn(), adapt_bn=2, adapt_bn_prior=0.0)
    backend(first)
    assert _bn_stats(backend) == pytest.approx([1.0, 1.0], abs=1e-6)
    backend(_frame(3.0))
    assert _bn_stats(backend) == pytest.approx([2.0, 1.5], abs=1e-6)


@pytest.mark.parametrize(
    "mode, gains, mean, var",
    [
        # split: IN on channels 0-1, BN on 2-3 (gains 1 and 2); frames 1 then 3
        ("split", (1.0, 1.0, 1.0, 2.0), [2.0, 4.0], [1.0, 4.0]),
        ("mix", (1.0, 1.0, 1.0, 2.0), [2.0, 2.0, 2.0, 4.0], [1.0, 1.0, 1.0, 4.0]),  # BN sees every channel
    ],
)
def test_bn_half_of_ibn_adapts_on_frames_that_reuse_in_statistics(
    mode: str, gains: tuple[float, ...], mean: list[float], var: list[float]
) -> None:
    # s = 2: frame 1 reuses frame 0's IN statistics, where IBN normalises its BN channels without calling
    # its BatchNorm module; it must still count in the BN estimate
    model = _ConvNorm(IBN(4, ratio=0.5, mode=mode), gains).eval()
    backend = TorchBackend(model, sparsity=2, adapt_bn=2, adapt_bn_prior=0.0)
    backend(_frame(1.0))
    backend(_frame(3.0))
    assert backend.last_path == "cached"
    assert _bn_stats(backend) == pytest.approx(mean + var, abs=1e-6)
    assert isinstance(backend.model.conv, nn.Module) and not backend.adapting


# ------------------------------------------------------------------------------ the tiny network
def _net() -> nn.Module:
    torch.manual_seed(0)
    return build_model("resnet18-ibn", num_classes=1, emb_dim=8, width=0.25, head_conv=8).eval()


def _stream(n: int, seed: int = 1, shift: float = 0.8) -> Tensor:
    """``[n, 1, 3, 64, 96]`` frames of a shifted domain (offset and gain), so adaptation changes outputs."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 3, *TINY_INPUT, generator=g)
    return torch.stack([(1.5 * base + shift + 0.1 * torch.randn(base.shape, generator=g)) for _ in range(n)])


def _close(a: dict[str, Tensor], b: dict[str, Tensor], atol: float = 1e-4) -> bool:
    return all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-4) for k in a)


@pytest.mark.parametrize("sparsity", [1, 2])
def test_folded_equals_unfolded_while_and_after_adapting(sparsity: int) -> None:
    net = _net()
    folded = TorchBackend(net, sparsity=sparsity, adapt_bn=3)
    source_fold = folded.model
    unfolded = TorchBackend(copy.deepcopy(net), sparsity=sparsity, fold=False, adapt_bn=3)
    plain = TorchBackend(net, sparsity=sparsity)  # no adaptation, to show it changes the maps
    changed = []
    for t, x in enumerate(_stream(7)):
        a, b, c = folded(x), unfolded(x), plain(x)
        assert _close(a, b), t
        assert folded.last_path == unfolded.last_path == plain.last_path, t
        changed.append(not _close(a, c, atol=1e-3))
    assert all(changed[1:])  # every frame after the first (mostly source statistics) differs
    refreshes = len(range(0, 7, sparsity))
    assert stream_stats(folded) == stream_stats(unfolded) == {"frames": 7, "refreshes": refreshes}
    assert folded.model is not source_fold and not folded.adapting  # refolded once the statistics froze
    # the given network is not changed by the folded backend
    source = {k: v for k, v in net.state_dict().items() if "running" in k}
    assert all(torch.equal(v, _net().state_dict()[k]) for k, v in source.items())


def test_a_batch_is_adapted_frame_by_frame_across_the_freeze() -> None:
    frames = _stream(5)
    one_by_one = TorchBackend(_net(), sparsity=2, adapt_bn=3)
    expected = [one_by_one(x) for x in frames]
    batched = TorchBackend(_net(), sparsity=2, adapt_bn=3)
    first = batched(torch.cat(list(frames[:4])))  # 3 adapted frames, then 1 folded in the same call
    last = batched(frames[4])
    got = [{k: v[i : i + 1] for k, v in first.items()} for i in range(4)] + [last]
    assert all(_close(g, e) for g, e in zip(got, expected, strict=True))
    assert stream_stats(batched) == stream_stats(one_by_one) == {"frames": 5, "refreshes": 3}


def test_reset_restores_the_source_statistics_and_each_stream_adapts_alone() -> None:
    net = _net()
    source = copy.deepcopy(net.state_dict())
    backend = TorchBackend(net, adapt_bn=2)
    for x in _stream(3, seed=1, shift=2.0):
        backend(x)
    assert backend.adapter is not None
    adapted = backend.adapter.model.state_dict()
    assert not torch.allclose(adapted["backbone.bn1.running_mean"], source["backbone.bn1.running_mean"])
    backend.reset_stream()
    assert backend.adapting and backend.adapter.seen == 0
    for key, value in backend.adapter.model.state_dict().items():
        if "running" in key:
            assert torch.equal(value, source[key]), key
    assert all(s.mean is None for s in get_stream_state(backend))
    # a second stream after reset gives what a fresh backend gives on it
    fresh = TorchBackend(_net(), adapt_bn=2)
    for x in _stream(4, seed=7, shift=-0.5):
        assert _close(backend(x), fresh(x))


def test_adapter_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="adapt_bn"):
        TorchBackend(_one_bn(), adapt_bn=-1)
    for bad in (True, 1.5, "3"):
        with pytest.raises(ValueError, match="adapt_bn"):
            TorchBackend(_one_bn(), adapt_bn=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adapt_bn_prior"):
        TorchBackend(_one_bn(), adapt_bn=2, adapt_bn_prior=-1.0)
    with pytest.raises(ValueError, match="unfolded"):
        BNAdapter(fold_model(_ConvNorm(IBN(4), (1.0, 1.0, 1.0, 1.0))), 2)
    adapter = BNAdapter(_one_bn(), 2)
    with pytest.raises(ValueError, match="only 2 of 2 left"):
        adapter.step(torch.cat([_frame(1.0)] * 3))
    assert TorchBackend(_one_bn()).adapter is None and TorchBackend(_one_bn()).adapt_bn == 0


def test_a_stream_state_cannot_be_switched_into_an_adapting_backend() -> None:
    backend = TorchBackend(_net(), adapt_bn=2)
    with pytest.raises(ValueError, match="one backend .* per camera"):
        backend.set_stream_state(get_stream_state(backend))


# ----------------------------------------------------------------------------------- the tracker
def _bgr(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(*TINY_INPUT, 3), dtype=np.uint8) for _ in range(n)]


def test_tracker_from_checkpoint_adapts_each_stream(tmp_path: Path) -> None:
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt")
    tracker = Tracker.from_checkpoint(ckpt, sparsity=2, adapt_bn=3, tracker_overrides={"det_thresh": 0.5})
    backend = tracker.backend
    assert isinstance(backend, TorchBackend) and backend.adapt_bn == 3 and tracker.sparsity == 2
    assert tracker.tracker_config.det_thresh == 0.5
    for frame in _bgr(4):
        tracker.update(frame)
    assert not backend.adapting
    tracker.reset()
    assert backend.adapting
    cfg = InferenceConfig().replace(runtime={"adapt_bn": 2})
    assert Tracker(cfg, _net(), TINY_INPUT).backend.adapt_bn == 2  # a wrapped module


def test_backends_other_than_torch_refuse_adapt_bn(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--adapt-bn .*only supported by the PyTorch backend"):
        open_backend(tmp_path / "model.onnx", adapt_bn=3)
    with pytest.raises(ValueError, match="--adapt-bn .*only supported by the PyTorch backend"):
        Tracker.from_checkpoint(tmp_path / "model.onnx", adapt_bn=3)

    class Other(StreamBackend):
        name = "other"

    with pytest.raises(ValueError, match="only the PyTorch backend supports it"):
        Tracker(InferenceConfig().replace(runtime={"adapt_bn": 3}), Other(RefreshSchedule()), TINY_INPUT)


# ------------------------------------------------------------------------------------------- CLI
def _track_args(*extra: str):
    return build_parser().parse_args(["track", "seq", "--weights", "best.pt", *extra])


def test_cli_flag_reaches_the_tracker() -> None:
    args = _track_args("--adapt-bn", "30", "--sparsity", "5")
    assert args.adapt_bn == 30 and load_inference_config(None, flag_overrides(args)).runtime.adapt_bn == 30
    assert load_inference_config(None, flag_overrides(_track_args())).runtime.adapt_bn == 0  # default: off
    assert load_inference_config(None, flag_overrides(_track_args("--adapt-bn", "0"))).runtime.adapt_bn == 0


@pytest.mark.parametrize("bad", ["-1", "2.5", "many"])
def test_cli_flag_refuses_bad_values(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _track_args("--adapt-bn", bad)
    assert f"argument --adapt-bn: expected an integer >= 0, got '{bad}'" in capsys.readouterr().err


def test_cli_flag_is_refused_for_onnxruntime_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="--adapt-bn is only supported by the PyTorch backend"):
        _tracker_kwargs(_track_args("--adapt-bn", "5", "--backend", "onnxruntime"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["track", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "--adapt-bn K test-time BN adaptation" in text
    assert f"prior worth {int(DEFAULT_ADAPT_PRIOR)} frames" in text  # the help states the default prior
