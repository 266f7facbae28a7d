"""The torch backend in bf16: autocast + channels-last, IN statistics in fp32, fallbacks and refusals."""

from collections.abc import Iterator

import pytest
import torch

import ibntrack.precision as precision_mod
from ibntrack.engine.infer import Tracker
from ibntrack.nn import IBN, build_model, get_stream_state
from ibntrack.nn.checkpoint import save_checkpoint
from ibntrack.runtime import TorchBackend, open_backend

INPUT = (64, 96)  # (H, W)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("resnet18-ibn", num_classes=1, emb_dim=8, width=0.25, head_conv=8).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, *INPUT))
    return model.eval()


def test_bf16_backend_matches_fp32_and_keeps_statistics_fp32(monkeypatch):
    # runs on every CPU: without native bf16 oneDNN emulates it (exact, only slower)
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    model = _model()
    a = TorchBackend(model, sparsity=2)
    b = TorchBackend(model, sparsity=2, precision="bf16")
    assert (a.precision, b.precision) == ("fp32", "bf16") and b.channels_last and not a.channels_last
    conv = next(m for m in b.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):  # refresh, cached, refresh, cached
        x = torch.randn(1, 3, *INPUT, generator=gen)
        ra, rb = a(x), b(x)
        for name, t in rb.items():
            assert t.dtype == torch.float32 and t.is_contiguous(), name
            assert float((t - ra[name]).abs().max()) < 0.05 * float(ra[name].abs().max()) + 1e-3, name
    assert b.schedule.stats() == {"frames": 4, "refreshes": 2}
    # weights are stored in bf16 once (not rounded by autocast on every call); folding stays fp32
    from ibntrack.nn.fold import FoldedConvIBN

    assert all(m.weight.dtype == torch.bfloat16 for m in b.model.modules() if type(m) is torch.nn.Conv2d)
    folded = [m for m in b.model.modules() if isinstance(m, FoldedConvIBN)]
    assert folded and all(m.weight.dtype == torch.float32 for m in folded)
    assert all(w.dtype == torch.bfloat16 for m in folded for _, w, _ in m._folded.values())
    for sa, sb in zip(get_stream_state(a), get_stream_state(b), strict=True):
        assert sb.mean.dtype == torch.float32 and sb.var.dtype == torch.float32
        assert torch.allclose(sa.mean, sb.mean, rtol=0.05, atol=0.02)


def test_in_statistics_of_bf16_activations_are_fp32():
    ibn = IBN(8, ratio=0.5).eval()
    x = torch.randn(2, 4, 16, 16) * 3 + 100  # a large mean: bf16 (8 mantissa bits) would round it
    mean, var = IBN._stats(x.to(torch.bfloat16))
    assert mean.dtype == torch.float32 and var.dtype == torch.float32
    ref_var, _ = torch.var_mean(x.to(torch.bfloat16).float(), dim=(2, 3), correction=0)
    assert torch.allclose(var, ref_var, rtol=1e-5)  # the variance of the bf16 values, computed in fp32
    assert IBN._stats(x.double())[0].dtype == torch.float64  # never narrower than the input
    del ibn


def test_bf16_without_native_support_falls_back_to_fp32(monkeypatch, caplog):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level("WARNING"):
        backend = TorchBackend(_model(), precision="bf16")
    assert backend.precision == "fp32" and not backend.channels_last
    assert "no native bfloat16" in caplog.text
    assert TorchBackend(_model(), precision="auto").precision == "fp32"


def test_unknown_precision_and_fp16_on_cpu_are_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        TorchBackend(_model(), precision="int8")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        TorchBackend(_model(), precision="fp16")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = _model()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model.config.to_dict(),
                           "input_size": list(INPUT), "train_scene": ["summer"]})  # fmt: skip
    return path


def test_tracker_from_checkpoint_takes_precision(ckpt):
    expected = "bf16" if precision_mod.cpu_has_native_bf16() else "fp32"
    assert Tracker.from_checkpoint(ckpt, precision="auto").backend.precision == expected
    assert Tracker.from_checkpoint(ckpt).backend.precision == "fp32"  # the Python API default


def test_onnx_export_refuses_a_torch_precision(ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    from ibntrack.cli import main
    from ibntrack.export import export_onnx

    path = export_onnx(ckpt, tmp_path / "m.onnx", check=False)
    with pytest.raises(ValueError, match="applies to the torch backend"):
        open_backend(path, "onnxruntime", precision="bf16")
    assert open_backend(path, "onnxruntime", precision="auto")[0].name == "onnxruntime"
    with pytest.raises(SystemExit, match="applies to the torch backend"):
        main(
            [
                "track",
                str(tmp_path),
                "--weights",
                str(path),
                "--backend",
                "onnxruntime",
                "--precision",
                "bf16",
            ]
        )


_AVX2_SCRIPT = """
import sys, torch
from ibntrack.nn import build_model
from ibntrack.precision import cpu_has_native_bf16
from ibntrack.runtime import TorchBackend
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model("resnet18-ibn", num_classes=1, emb_dim=8, width=0.25, head_conv=8).train()
with torch.no_grad():
    for _ in range(3):
        model(torch.randn(2, 3, 64, 96))
model.eval()
auto = TorchBackend(model, sparsity=2, precision="auto")
bf16 = TorchBackend(model, sparsity=2, precision="bf16")
x = torch.load(sys.argv[1], weights_only=True)
maps = [auto(x[i : i + 1]) for i in range(len(x))]
torch.save({"maps": maps, "auto": auto.precision, "bf16": bf16.precision, "native": cpu_has_native_bf16()},
           sys.argv[2])
"""


def test_torch_path_under_onednn_avx2_cap_runs_fp32_with_the_same_maps(tmp_path):
    """ONEDNN_MAX_CPU_ISA=AVX2 imitates an AVX2-only CPU for torch (it must be set before torch loads, so
    a subprocess): auto and bf16 resolve to fp32 there, and the maps equal this process's fp32 maps."""
    import os
    import subprocess
    import sys

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, *INPUT, generator=gen)  # refresh, cached, refresh, cached
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _AVX2_SCRIPT, str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert (out["auto"], out["bf16"], out["native"]) == ("fp32", "fp32", False)
    ref = TorchBackend(_model(), sparsity=2, precision="fp32")
    for i, capped in enumerate(out["maps"]):
        mine = ref(x[i : i + 1])
        for name, t in mine.items():
            # fp32 on AVX2 vs AVX-512/AMX kernels: the same sums in another order (float rounding only)
            assert float((capped[name] - t).abs().max()) <= 1e-4 * float(t.abs().max()) + 1e-6, name
