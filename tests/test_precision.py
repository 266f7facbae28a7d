"""Number-format resolution (``ibntrack.precision``) and bf16 training on the CPU."""

from __future__ import annotations

import logging

import pytest
import torch

from ibntrack import precision
from ibntrack.precision import autocast, resolve_precision


@pytest.fixture()
def native(monkeypatch):
    def set_native(value: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: value)

    return set_native


@pytest.mark.parametrize(
    "requested, device, has_bf16, expected",
    [
        ("auto", "cpu", True, "bf16"),
        ("auto", "cpu", False, "fp32"),
        ("auto", "cuda", False, "fp16"),
        ("fp32", "cpu", True, "fp32"),
        ("bf16", "cpu", True, "bf16"),
        ("bf16", "cuda", False, "bf16"),
        ("fp16", "cuda", False, "fp16"),
    ],
)
def test_resolution_table(native, requested, device, has_bf16, expected):
    native(has_bf16)
    assert resolve_precision(requested, device) == expected


def test_bf16_without_native_support_warns_and_uses_fp32(native, caplog):
    native(False)
    with caplog.at_level(logging.WARNING):
        assert resolve_precision("bf16", "cpu", "--precision") == "fp32"
    assert "--precision=bf16: this CPU has no native bfloat16" in caplog.text


@pytest.mark.parametrize("requested, match", [("fp16", "needs a CUDA device"), ("half", "must be one of")])
def test_bad_requests_name_the_option(requested, match):
    with pytest.raises(ValueError, match=rf"train.precision.*{match}|{match}"):
        resolve_precision(requested, "cpu", "train.precision")


def test_cpuinfo_flags_are_read(monkeypatch, tmp_path):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # the cap is tested below
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    precision.cpu_has_native_bf16.cache_clear()
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16 avx512_vnni\n")
    real = precision.Path

    monkeypatch.setattr(precision, "Path", lambda p: info if p == "/proc/cpuinfo" else real(p))
    assert precision.cpu_has_native_bf16()
    precision.cpu_has_native_bf16.cache_clear()
    # oneDNN capped below AVX512_CORE_BF16 only emulates bf16, whatever the CPU has
    for cap, native in (("AVX2", False), ("avx512_core_vnni", False), ("AVX512_CORE_BF16", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert precision.cpu_has_native_bf16() is native, cap
        precision.cpu_has_native_bf16.cache_clear()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    info.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert not precision.cpu_has_native_bf16()
    precision.cpu_has_native_bf16.cache_clear()


def test_autocast_runs_convolutions_in_bf16_and_is_a_noop_for_fp32():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with autocast("bf16", "cpu"):
        assert conv(x).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert conv(x).dtype == torch.float32


def test_bf16_channels_last_training_steps_are_finite_and_keep_fp32_weights(tmp_path, monkeypatch):
    from ibntrack.config import load_config
    from ibntrack.nn.checkpoint import load_checkpoint
    from ibntrack.training.train import fit
    from tests.training.test_train import TINY, _make_sequence

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # bf16 is exact, only slower
    data = tmp_path / "d"
    _make_sequence(data, seed=1, objects=3, frames=4)
    tiny = [o for o in TINY if not o.startswith("train.amp")]
    cfg = load_config(
        None,
        [
            *tiny,
            f"data.train=[{data}]",
            f"train.out_dir={tmp_path / 'run'}",
            "train.epochs=1",
            "train.precision=bf16",
            "train.channels_last=true",
            "train.max_steps=2",
        ],
    )
    torch.set_num_threads(1)
    fit(cfg)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    weights = [v for v in ckpt["model"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights)
    log = (tmp_path / "run" / "train_log.jsonl").read_text()
    assert '"step": 2' in log
