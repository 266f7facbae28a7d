"""Backends own their stream's schedule; the torch backend, the protocol, open_backend's refusals."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ibntrack.nn import IBN, build_model, force_refresh, get_stream_state, reset_stream, stream_stats
from ibntrack.nn.checkpoint import save_checkpoint
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.runtime import Backend, TorchBackend, open_backend

INPUT = (64, 96)  # (H, W)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("resnet18-ibn", num_classes=1, emb_dim=8, width=0.25, head_conv=8).eval()


def test_torch_backend_owns_the_schedule_of_its_layers() -> None:
    schedule = RefreshSchedule(3)
    backend = TorchBackend(_model(), schedule=schedule)
    assert isinstance(backend, Backend)
    layers = [m for m in backend.model.modules() if isinstance(m, IBN)]
    assert layers and all(m.schedule is schedule for m in layers)
    frames = torch.randn(6, 1, 3, *INPUT)
    paths = []
    for t, x in enumerate(frames):
        if t == 4:
            force_refresh(backend)  # the nn functions drive a backend as they drive a model
        out = backend(x)
        paths.append(backend.last_path)
    assert out["hm"].shape == (1, 1, 16, 24)
    assert paths == ["refresh", "cached", "cached", "refresh", "refresh", "cached"]
    assert stream_stats(backend) == schedule.stats() == {"frames": 6, "refreshes": 3}
    reset_stream(backend)
    assert stream_stats(backend) == {"frames": 0, "refreshes": 0}
    assert all(s.mean is None for s in get_stream_state(backend))


def test_fold_false_runs_the_given_model_with_the_backends_schedule() -> None:
    model = _model()
    backend = TorchBackend(model, sparsity=2, fold=False)
    assert backend.model is model and backend.sparsity == 2
    assert all(m.schedule is backend.schedule for m in model.modules() if isinstance(m, IBN))


def test_images_are_checked() -> None:
    backend = TorchBackend(_model())
    with pytest.raises(ValueError, match="multiples of 32"):
        backend(torch.zeros(1, 3, 64, 90))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        backend(torch.zeros(3, 64, 96))


def test_open_backend_reads_the_card_and_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    model = _model()
    path = save_checkpoint(
        tmp_path / "m.pt",
        {"model": model.state_dict(), "model_config": model.config.to_dict(), "input_size": list(INPUT)},
    )
    backend, card = open_backend(path, sparsity=4)
    assert isinstance(backend, TorchBackend) and backend.sparsity == 4 and card.input_size == INPUT
    with pytest.raises(ValueError, match="backend must be one of"):
        open_backend(path, backend="tensorrt")
    with pytest.raises(ValueError, match="device cpu"):
        open_backend(tmp_path / "m.onnx", backend="onnxruntime", device="cuda")
