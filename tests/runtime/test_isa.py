"""CPU/ISA detection and the ``--precision auto`` policy, on hand-written /proc/cpuinfo text."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from ibntrack import precision
from ibntrack.runtime import isa

# flags lines of the three machine kinds this project runs on (trimmed to what matters + some noise)
AVX2_EPYC = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2 sha_ni"
ZEN4 = AVX2_EPYC + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni avx512vbmi"
SAPPHIRE = ZEN4 + " avx512_fp16 amx_bf16 amx_tile amx_int8"
CASCADE = AVX2_EPYC + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
SKYLAKE_X = AVX2_EPYC + " avx512f avx512dq avx512cd avx512bw avx512vl"
ALDER = AVX2_EPYC + " avx_vnni"


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


def test_parse_cpuinfo_reads_the_first_processor():
    text = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
        f"flags\t\t: {AVX2_EPYC}\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    cpu = isa.parse_cpuinfo(text)
    assert cpu.model == "AMD EPYC 7B13" and "avx2" in cpu.flags and "avx512f" not in cpu.flags
    assert isa.parse_cpuinfo("") == isa.CPU("unknown", frozenset())


@pytest.mark.parametrize(
    "flags, expected",
    [
        (AVX2_EPYC, "avx2"),
        (ZEN4, "avx512_bf16"),
        (SAPPHIRE, "amx"),
        (CASCADE, "avx512_vnni"),
        (SKYLAKE_X, "avx512"),
        (ALDER, "avx2"),
        ("fpu sse sse2", "baseline"),
    ],
)
def test_isa_class_table(flags, expected):
    assert isa.isa_class(_flags(flags)) == expected


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"ONEDNN_MAX_CPU_ISA": "avx2"}, "AVX2"),
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, "AVX512_CORE_VNNI"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX", "DNNL_MAX_CPU_ISA": "AVX2"}, "AVX512_CORE_AMX"),
    ],
)
def test_onednn_cap_from_the_environment(env, expected):
    assert isa.onednn_cap(env) == expected


def test_unknown_cap_is_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert isa.onednn_cap({"ONEDNN_MAX_CPU_ISA": "AVX9000"}) is None
    assert "AVX9000" in caplog.text


@pytest.mark.parametrize(
    "flags, cap, torch_cls",
    [
        (ZEN4, "AVX2", "avx2"),
        (SAPPHIRE, "AVX512_CORE_BF16", "avx512_bf16"),
        (SAPPHIRE, "AVX512_CORE_VNNI", "avx512_vnni"),
        (AVX2_EPYC, "ALL", "avx2"),  # a cap never raises the class
        (ZEN4, None, "avx512_bf16"),
    ],
)
def test_the_cap_lowers_torch_but_not_onnxruntime(flags, cap, torch_cls):
    assert isa.torch_class(_flags(flags), cap) == torch_cls
    assert isa.ort_class(_flags(flags)) == isa.isa_class(_flags(flags))


def test_avx_vnni_counts_as_vnni_for_onnxruntime_int8():
    assert isa.ort_class(_flags(ALDER)) == "avx512_vnni" and isa.torch_class(_flags(ALDER)) == "avx2"


@pytest.mark.parametrize(
    "flags, cap, expected",
    [
        (AVX2_EPYC, None, "fp32"),  # no native bf16: emulated bf16 ran at 1.00x fp32 there
        (SKYLAKE_X, None, "fp32"),
        (CASCADE, None, "fp32"),  # VNNI (int8) but no bf16
        (ZEN4, None, "bf16"),
        (SAPPHIRE, None, "bf16"),
        (ZEN4, "AVX2", "fp32"),  # the imitation of an AVX2 CPU
        (SAPPHIRE, "AVX512_CORE_VNNI", "fp32"),
        (SAPPHIRE, "AVX512_CORE_BF16", "bf16"),
    ],
)
def test_auto_never_picks_bf16_without_native_bf16(flags, cap, expected):
    choice = isa.choose_precision(_flags(flags), cap)
    assert choice.precision == expected
    if expected == "fp32":
        assert "no native bfloat16" in choice.reason
    if cap and isa.torch_class(_flags(flags), cap) != isa.isa_class(_flags(flags)):
        assert f"ONEDNN_MAX_CPU_ISA={cap}" in choice.reason


def test_auto_with_an_int8_export_and_on_cuda():
    int8 = isa.choose_precision(_flags(AVX2_EPYC), int8_export=True)
    assert int8.precision == "int8" and "7-bit weights" in int8.reason
    vnni = isa.choose_precision(_flags(ZEN4), "AVX2", int8_export=True)  # ORT ignores the oneDNN cap
    assert vnni.precision == "int8" and "VNNI" in vnni.reason
    assert isa.choose_precision(_flags(ZEN4), device_type="cuda").precision == "fp16"


def test_auto_precision_passes_explicit_formats_and_logs_its_choice_once(caplog):
    assert isa.auto_precision("fp32") == "fp32" and isa.auto_precision("bf16") == "bf16"
    isa._announce.cache_clear()
    with caplog.at_level(logging.INFO, logger="ibntrack.runtime.isa"):
        first = isa.auto_precision("auto", "cpu")
        assert isa.auto_precision("auto", "cpu") == first
    assert caplog.text.count(f"precision auto -> {first}: ") == 1


_PROBE = (
    "from ibntrack import precision; from ibntrack.runtime import isa; "
    "c = isa.choose_precision(isa.read_cpu().flags, isa.onednn_cap()); "
    "print(c.precision, precision.resolve_precision('auto', 'cpu'), precision.cpu_has_native_bf16())"
)


@pytest.mark.parametrize("cap", [None, "AVX2"])
def test_the_leaf_rule_of_precision_agrees_with_the_isa_table(cap):
    """``ibntrack.precision`` (a leaf: training asks it) keeps its own bf16 rule; it must agree with the
    table on this machine, natively and with the AVX2 cap (set before start-up: a subprocess)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    if cap:
        env["ONEDNN_MAX_CPU_ISA"] = cap
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    table, resolved, native = out.stdout.split()
    assert table == resolved and (native == "True") == (table == "bf16")
    if cap:
        assert table == "fp32"


def test_in_process_rule_agrees_too():
    expected = isa.choose_precision(isa.read_cpu().flags, isa.onednn_cap()).precision
    assert precision.resolve_precision("auto", "cpu") == expected


def test_amx_int8_alone_is_no_native_bf16():
    """A (hypothetical) CPU listing ``amx_int8`` without ``amx_bf16``/``avx512_bf16``: the same rule as
    ``ibntrack.precision`` (bf16 needs one of those two flags)."""
    flags = _flags(CASCADE + " amx_tile amx_int8")
    assert isa.isa_class(flags) == "amx" and isa.choose_precision(flags).precision == "fp32"
