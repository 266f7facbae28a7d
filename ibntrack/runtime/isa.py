"""What this x86 CPU computes fast, and the number format ``--precision auto`` picks from it.

Pure functions over the text of ``/proc/cpuinfo`` (its ``flags`` line) and the environment, so every rule
is testable with hand-written flag strings; :func:`read_cpu` reads the live machine once.

**ISA classes** (:func:`isa_class`), the best a CPU offers for dense dot products:

* ``amx`` — ``amx_bf16`` / ``amx_int8`` (Sapphire Rapids): bf16 on AMX tiles, int8 (AMX / VNNI);
* ``avx512_bf16`` — ``avx512_bf16`` (Zen 4, Cooper Lake): bf16 (``vdpbf16ps``), int8 (VNNI);
* ``avx512_vnni`` — ``avx512_vnni`` without bf16 (Cascade Lake): int8 (VNNI); bf16 only emulated;
* ``avx512`` — ``avx512f`` + ``avx512bw`` (Skylake-X): fp32; u8×s8 int8 pairs saturate in int16;
* ``avx2`` — ``avx2`` (older EPYC, Haswell): fp32; u8×s8 int8 pairs saturate in int16;
* ``baseline`` — none of the above: fp32.

**The cap.** oneDNN (PyTorch's convolutions and matmuls) never uses an ISA above
``ONEDNN_MAX_CPU_ISA`` (or its older name ``DNNL_MAX_CPU_ISA``), e.g. ``AVX2`` imitates an AVX2-only CPU:
the torch class is the CPU's class capped there (:func:`torch_class`). ONNX Runtime ignores the cap: its
MLAS kernels follow the CPU (:func:`ort_class`).

**The policy** (:func:`choose_precision`, an ISA table from the measurements in docs/PERFORMANCE.md):
CUDA → fp16. CPU: an int8 ONNX export when one is given (it is the fastest format measured on every
class, and ``ibntrack export --quantize int8`` writes 7-bit weights that no ISA saturates); otherwise
bf16 when the *torch* class has native bf16 (``amx``, ``avx512_bf16``), else fp32 — emulated bf16 is
never faster than fp32 (1.00× on an AVX2-only EPYC; a bf16 matmul ran at 1 GOP/s vs 47-57 for fp32
under ``ONEDNN_MAX_CPU_ISA=AVX2``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CPU",
    "ISA_CLASSES",
    "PrecisionChoice",
    "auto_precision",
    "choose_precision",
    "isa_class",
    "onednn_cap",
    "ort_class",
    "parse_cpuinfo",
    "read_cpu",
    "torch_class",
]

log = logging.getLogger(__name__)

ISA_CLASSES = ("baseline", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx")
"""From slowest to fastest; :func:`isa_class` returns one."""

RELEVANT_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip
"""The ``/proc/cpuinfo`` flags that decide the class (what ``ibntrack info`` lists)."""

# oneDNN's cpu_isa values (ONEDNN_MAX_CPU_ISA), each mapped to the class it allows at most
_CAP_CLASS = {
    "SSE41": "baseline",
    "AVX": "baseline",
    "AVX2": "avx2",
    "AVX2_VNNI": "avx2",
    "AVX2_VNNI_2": "avx2",
    "AVX512_CORE": "avx512",
    "AVX512_CORE_VNNI": "avx512_vnni",
    "AVX512_CORE_BF16": "avx512_bf16",
    "AVX10_1_512": "avx512_bf16",
    "AVX512_CORE_FP16": "avx512_bf16",
    "AVX10_1_512_AMX": "amx",
    "AVX512_CORE_AMX": "amx",
    "AVX10_1_512_AMX_FP16": "amx",
    "AVX512_CORE_AMX_FP16": "amx",
    "ALL": "amx",
    "DEFAULT": "amx",
}
_NATIVE_BF16 = {"avx512_bf16", "amx"}
_INT8_HINT = " (an int8 export ran 2.0-3.8x fp32: ibntrack export --quantize int8 --calibration SRC)"


@dataclasses.dataclass(frozen=True)
class CPU:
    """What ``/proc/cpuinfo`` says: ``model`` (first ``model name``) and ``flags`` (first ``flags`` line)."""

    model: str
    flags: frozenset[str]


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """A resolved format and the sentence saying why: ``precision`` is ``fp32 | bf16 | fp16 | int8``."""

    precision: str
    reason: str


def parse_cpuinfo(text: str) -> CPU:
    """The model name and flags of the first processor in ``/proc/cpuinfo`` text (empty when absent)."""
    model, flags = "unknown", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip() or "unknown"
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return CPU(model, flags)


@functools.cache
def read_cpu() -> CPU:
    """:func:`parse_cpuinfo` of this machine's ``/proc/cpuinfo`` (no flags where it cannot be read)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return CPU("unknown", frozenset())


def isa_class(flags: frozenset[str] | set[str]) -> str:
    """The CPU's class (one of :data:`ISA_CLASSES`, see the module table) from its flags."""
    if {"amx_bf16", "amx_int8"} & flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if {"avx512f", "avx512bw"} <= flags:
        return "avx512_vnni" if "avx512_vnni" in flags else "avx512"
    if "avx2" in flags:
        return "avx2"
    return "baseline"


def onednn_cap(env: Mapping[str, str] | None = None) -> str | None:
    """``ONEDNN_MAX_CPU_ISA`` (else ``DNNL_MAX_CPU_ISA``) upper-cased, None when unset or unknown."""
    env = os.environ if env is None else env
    value = (env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if value and value not in _CAP_CLASS:
        log.warning("ONEDNN_MAX_CPU_ISA=%s is not a oneDNN ISA name; ignored here", value)
        return None
    return value or None


def torch_class(flags: frozenset[str] | set[str], cap: str | None = None) -> str:
    """The class PyTorch's oneDNN kernels use: the CPU's class, lowered to what ``cap`` allows."""
    own = isa_class(flags)
    if cap is None:
        return own
    return min(own, _CAP_CLASS[cap], key=ISA_CLASSES.index)


def ort_class(flags: frozenset[str] | set[str]) -> str:
    """The class ONNX Runtime's int8 kernels use (MLAS follows the CPU; ``ONEDNN_MAX_CPU_ISA`` does not
    apply). ``avx_vnni`` (AVX2 with VNNI, e.g. Alder Lake) counts as VNNI for int8."""
    own = isa_class(flags)
    return "avx512_vnni" if own in ("avx2", "avx512") and "avx_vnni" in flags else own


def choose_precision(
    flags: frozenset[str] | set[str],
    cap: str | None = None,
    device_type: str = "cpu",
    int8_export: bool = False,
) -> PrecisionChoice:
    """The format ``auto`` runs in on a machine with these ``flags`` (the policy of the module docstring).

    Args:
        flags: ``/proc/cpuinfo`` flags; cap: :func:`onednn_cap`; device_type: ``"cpu"`` or ``"cuda"``.
        int8_export: the weights are an int8 ONNX export (ONNX Runtime runs it); else a torch checkpoint.
    """
    if device_type == "cuda":
        return PrecisionChoice("fp16", "CUDA device: fp16 autocast")
    own, cls = isa_class(flags), torch_class(flags, cap)
    capped = f" (ONEDNN_MAX_CPU_ISA={cap} caps torch's {own} CPU to {cls})" if cls != own else ""
    if int8_export:
        kernel = ort_class(flags)
        how = (
            "exact int32 VNNI/AMX dot products"
            if kernel in ("avx512_vnni", "avx512_bf16", "amx")
            else "u8×s8 kernels; its 7-bit weights keep them from saturating"
        )
        return PrecisionChoice("int8", f"int8 ONNX export, {kernel} CPU for ONNX Runtime: {how}")
    if cls in _NATIVE_BF16 and {"avx512_bf16", "amx_bf16"} & flags:  # the rule ibntrack.precision keeps
        flag = "amx_bf16" if cls == "amx" else "avx512_bf16"
        return PrecisionChoice(
            "bf16", f"{cls} CPU{capped}: native bfloat16 ({flag}), 1.4-2.5x fp32 end to end{_INT8_HINT}"
        )
    why = "no native bfloat16 (avx512_bf16/amx_bf16) for torch" + capped
    return PrecisionChoice("fp32", f"{cls} CPU: {why}; emulated bf16 is not faster than fp32{_INT8_HINT}")


@functools.cache
def _announce(message: str) -> None:
    log.info(message)  # once per process and message: every stream opens a backend


def auto_precision(requested: str, device: object = "cpu", int8_export: bool = False) -> str:
    """``requested`` unchanged unless it is ``"auto"``: then :func:`choose_precision` on this machine,
    logged once (``precision auto -> bf16: <why>``). ``device``: a ``torch.device`` or its name."""
    if requested != "auto":
        return requested
    kind = str(getattr(device, "type", device)).split(":")[0]
    choice = choose_precision(read_cpu().flags, onednn_cap(), kind, int8_export)
    _announce(f"precision auto -> {choice.precision}: {choice.reason}")
    return choice.precision
