"""``ibntrack info``: this machine as ibntrack sees it — what a user pastes into a bug report.

CPU model and the flags that decide the fast number formats, the ISA class torch (oneDNN) and ONNX
Runtime use (``ONEDNN_MAX_CPU_ISA`` caps the first only), versions, and what ``--precision auto`` picks
here and why (:mod:`ibntrack.runtime.isa`). ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from typing import Any

__all__ = ["collect_info", "format_info"]

_ONEDNN_PROBE = (  # oneDNN prints its ISA line on its first primitive, in verbose mode
    "import torch\nwith torch.backends.mkldnn.verbose(1):\n"
    "    torch.nn.functional.conv2d(torch.randn(1, 32, 32, 32), torch.randn(32, 32, 3, 3))\n"
    "    a = torch.randn(64, 64).bfloat16()\n    a @ a\n"
)


def _onednn_isa(timeout: float = 60.0) -> str:
    """The ISA oneDNN reports it dispatches to (``ONEDNN_VERBOSE=1`` in a child process, same environment:
    oneDNN prints it once, from C, when its first primitive is created)."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "OMP_NUM_THREADS": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _ONEDNN_PROBE], env=env, capture_output=True, text=True, timeout=timeout
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({type(exc).__name__})"
    match = re.search(r"info,cpu,isa:(.*)", out)
    return match.group(1).strip() if match else "unknown (oneDNN printed no ISA line)"


def collect_info(probe_onednn: bool = True) -> dict[str, Any]:
    """Everything ``ibntrack info`` reports, as plain JSON-able values.

    Args:
        probe_onednn: ask oneDNN which ISA it dispatches to (a child process, about two seconds).
    """
    import torch

    from ibntrack.export.quantize import quantize_export
    from ibntrack.runtime import isa
    from ibntrack.version import __version__

    cpu = isa.read_cpu()
    cap = isa.onednn_cap()
    auto = isa.choose_precision(cpu.flags, cap)
    auto8 = isa.choose_precision(cpu.flags, cap, int8_export=True)
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\w.]+)", config)
    info: dict[str, Any] = {
        "ibntrack": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": {
            "model": cpu.model,
            "logical_cores": os.cpu_count(),
            "flags_found": [f for f in isa.RELEVANT_FLAGS if f in cpu.flags],
            "flags_missing": [f for f in isa.RELEVANT_FLAGS if f not in cpu.flags],
            "isa_class": isa.isa_class(cpu.flags),
        },
        "torch": {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "onednn_version": onednn.group(1) if onednn else None,
            "onednn_max_cpu_isa": cap,
            "isa_class": isa.torch_class(cpu.flags, cap),
            "onednn_isa": _onednn_isa() if probe_onednn else "not probed",
            "cuda": torch.cuda.is_available(),
        },
        "onnxruntime": None,
        "defaults": {
            "precision_auto": {"choice": auto.precision, "why": auto.reason},
            "precision_auto_int8_export": {"choice": auto8.precision, "why": auto8.reason},
            "int8_reduce_range": _default(quantize_export, "reduce_range"),
        },
    }
    try:
        import onnxruntime as ort

        info["onnxruntime"] = {
            "version": ort.__version__,
            "providers": ort.get_available_providers(),
            "device": ort.get_device(),
            "isa_class": isa.ort_class(cpu.flags),
        }
    except ImportError:
        pass
    return info


def _default(fn: Any, name: str) -> Any:
    import inspect

    return inspect.signature(fn).parameters[name].default


def format_info(info: dict[str, Any]) -> str:
    """The human-readable report of :func:`collect_info`'s dict."""
    c, t, o, d = info["cpu"], info["torch"], info["onnxruntime"], info["defaults"]
    lines = [
        f"ibntrack {info['ibntrack']}, Python {info['python']}, {info['platform']}",
        f"CPU: {c['model']} ({c['logical_cores']} logical cores), ISA class {c['isa_class']}",
        f"  flags found:   {' '.join(c['flags_found']) or '-'}",
        f"  flags missing: {' '.join(c['flags_missing']) or '-'}",
        f"torch {t['version']}: {t['threads']} threads, ATen CPU capability {t['cpu_capability']}, "
        f"oneDNN {t['onednn_version']} (available: {t['mkldnn_available']}), CUDA: {t['cuda']}",
        f"  ONEDNN_MAX_CPU_ISA: {t['onednn_max_cpu_isa'] or 'unset'} -> torch ISA class {t['isa_class']}",
        f"  oneDNN dispatches to: {t['onednn_isa']}",
    ]
    if o:
        lines.append(
            f"onnxruntime {o['version']}: providers {', '.join(o['providers'])}; int8 kernels for ISA class "
            f"{o['isa_class']} (ONEDNN_MAX_CPU_ISA does not apply)"
        )
    else:
        lines.append("onnxruntime: not installed (pip install 'ibntrack[onnx]')")
    lines += [
        f"--precision auto (torch checkpoint): {d['precision_auto']['choice']} — "
        f"{d['precision_auto']['why']}",
        f"--precision auto (int8 export): {d['precision_auto_int8_export']['choice']} — "
        f"{d['precision_auto_int8_export']['why']}",
        f"export --quantize int8: reduce_range={d['int8_reduce_range']} (7-bit weights, the same sums on "
        "every x86 ISA)",
    ]
    return "\n".join(lines)


def _run_info(args: argparse.Namespace) -> int:
    info = collect_info(probe_onednn=not args.no_probe)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="this machine's CPU flags, torch/ONNX Runtime kernels and the chosen defaults (for bug reports)",
        description="Prints the CPU model and the flags that decide the fast number formats (avx2, "
        "avx512*, VNNI, bf16, AMX), the ISA torch's oneDNN uses (capped by ONEDNN_MAX_CPU_ISA) and the "
        "one ONNX Runtime uses, versions and providers, and what `--precision auto` picks here and why.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--no-probe",
        action="store_true",
        help="do not start a child process to ask oneDNN which ISA it dispatches to (saves ~2 s)",
    )
    p.set_defaults(func=_run_info)
