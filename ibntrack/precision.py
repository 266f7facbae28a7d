"""Number formats: which one a run uses (``fp32 | bf16 | fp16 | auto``) and what the hardware has.

The one place that knows whether this CPU computes bfloat16 natively (``avx512_bf16`` or AMX, read from
``/proc/cpuinfo`` on Linux, capped by ``ONEDNN_MAX_CPU_ISA``) and how a requested precision resolves on a
device. Training (``train.precision``) and inference (``--precision``) both ask :func:`resolve_precision`;
the inference backends log *why* ``auto`` chose what it did through :mod:`ibntrack.runtime.isa`, which
holds the full ISA table (this leaf module keeps only the bf16 rule it needs, and a test pins that both
agree).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "autocast", "cpu_has_native_bf16", "resolve_precision"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
# oneDNN ISA names (ONEDNN_MAX_CPU_ISA) below which oneDNN only emulates bf16
_NO_BF16_CAPS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions (x86 ``avx512_bf16`` or AMX) and oneDNN may
    use them (``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA`` unset or at least ``AVX512_CORE_BF16``).

    Read from ``/proc/cpuinfo``; False where that file does not exist (oneDNN then emulates bf16, which
    is slower than fp32).
    """
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if cap in _NO_BF16_CAPS:
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def resolve_precision(requested: str, device: torch.device | str, what: str = "precision") -> str:
    """The format a run will use: ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    ``auto`` is bf16 on a CPU with native bf16, fp16 on CUDA, else fp32. An explicit ``bf16`` on a CPU
    without native support falls back to fp32 with a warning (emulated bf16 is slower than fp32, never
    faster); ``fp16`` is CUDA-only.

    Raises:
        ValueError: an unknown name, or ``fp16`` on a CPU (naming ``what``).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"{what} must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    kind = torch.device(device).type
    if requested == "auto":
        if kind == "cuda":
            return "fp16"
        return "bf16" if kind == "cpu" and cpu_has_native_bf16() else "fp32"
    if requested == "fp16" and kind != "cuda":
        raise ValueError(f"{what}=fp16 needs a CUDA device; on a CPU use bf16 (or auto)")
    if requested == "bf16" and kind == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "%s=bf16: this CPU has no native bfloat16 (avx512_bf16/AMX, or ONEDNN_MAX_CPU_ISA caps it); "
            "using fp32",
            what,
        )
        return "fp32"
    return requested


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision])
