"""Number formats per ISA class (issue 23): ``bench_track.py`` run once per ISA, tabled in PERFORMANCE.md.

Each run is one child process of :mod:`bench_track` (its peaks, network timing with plain-BN twins, and
end-to-end ``track`` frames/s + HOTA, all four variants — fp32, bf16, ORT fp32, ORT int8 — interleaved in
one run) with a plan sized for a shared 2-core machine (``--plan``). The children differ only in their
environment:

* ``native``: the CPU as it is;
* ``avx2``: ``ONEDNN_MAX_CPU_ISA=AVX2`` — oneDNN (torch's convolutions and matmuls) imitates an AVX2-only
  CPU. **This caps torch only**: ONNX Runtime's MLAS picks its kernels by the CPU and ignores it, so the
  ORT rows of that table still run the machine's own (e.g. VNNI) int8 kernels.

The variable must be set before torch loads, hence the child processes. The report gives, per ISA class,
frames/s (median over rounds), × fp32, HOTA and ΔHOTA, network ms/frame, the fraction of the format's
matmul peak, the sparse-IN overhead over the plain-BN twin at s = 5, and what ``--precision auto`` picks
there (:func:`ibntrack.runtime.isa.choose_precision`).

Run from the repository root::

    python benchmarks/bench_precision.py --out docs/PERFORMANCE.md          # ≈ 10-20 min on 2 busy cores
    python benchmarks/bench_precision.py --isa native --plan smoke          # a couple of minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ISAS = {"native": None, "avx2": "AVX2"}
VARIANTS = ("fp32", "bf16", "ort-fp32", "ort-int8")
FORMAT_OF = {"fp32": "fp32", "bf16": "bf16", "ort-fp32": "fp32", "ort-int8": "int8"}
# bench_track.Plan fields: repeats, net_frames, r50_frames, test_frames, domains, rounds, r50_track_frames,
# matmul, calib_frames, r50_repeats (resnet50 is off in both plans: the shipped model end to end only)
PLANS = {
    "short": dict(repeats=3, net_frames=20, test_frames=60, rounds=2, matmul=1024, calib_frames=16),
    # the sparse-IN overhead (IBN / BN at s = 5) needs many interleaved frames; end to end is a smoke here
    "sparse": dict(repeats=6, net_frames=40, test_frames=20, rounds=1, matmul=1024, calib_frames=16),
    "smoke": dict(repeats=1, net_frames=5, test_frames=20, rounds=1, matmul=512, calib_frames=4),
}


def _child(plan_name: str, json_out: Path, threads: int) -> int:
    """Runs bench_track.main with this module's plan (in a process whose environment is already set)."""
    sys.path.insert(0, str(HERE))
    import bench_track

    p = PLANS[plan_name]
    bench_track.PLANS["quick"] = bench_track.Plan(
        p["repeats"], p["net_frames"], 1, p["test_frames"], bench_track.DOMAINS, p["rounds"], 1,
        p["matmul"], p["calib_frames"], 0, r50=False,
    )  # fmt: skip
    return bench_track.main(["--quick", "--no-r50", "--threads", str(threads), "--json", str(json_out)])


def _cpu_lines() -> tuple[str, str]:
    sys.path.insert(0, str(ROOT))
    from ibntrack.runtime import isa

    cpu = isa.read_cpu()
    found = [f for f in isa.RELEVANT_FLAGS if f in cpu.flags]
    return cpu.model, " ".join(found) or "(none of the relevant flags)"


def _table(isa_name: str, raw: dict) -> list[str]:
    """One ISA's table. Under a cap the ORT rows get no fraction of peak: the peaks were measured through
    the capped oneDNN, which ORT does not use."""
    from ibntrack.runtime import isa

    cpu = isa.read_cpu()
    cap = ISAS[isa_name]
    torch_cls, ort_cls = isa.torch_class(cpu.flags, cap), isa.ort_class(cpu.flags)
    auto = isa.choose_precision(cpu.flags, cap)
    auto8 = isa.choose_precision(cpu.flags, cap, int8_export=True)
    ms = raw["network_ms"]
    peaks = {k: statistics.median(v) for k, v in raw["peaks_ops"].items()}
    flops = raw["flops"]["shipped"]["ibn"]
    base_fps = statistics.median(raw["e2e_fps"]["fp32"])
    base_hota = raw["hota"]["fp32"]["HOTA"]
    lines = [
        "| variant | track frames/s | × fp32 | HOTA | Δ HOTA | network ms | % of its format's peak "
        "| IBN / BN at s = 5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        fps = statistics.median(raw["e2e_fps"][v])
        t = statistics.median(ms[f"shipped/ibn/{v}"])
        emulated = v == "bf16" and auto.precision != "bf16"  # bf16 requested, runs fp32 (the fallback)
        fmt = "fp32" if emulated else FORMAT_OF[v]
        frac = flops / (t / 1e3) / peaks[fmt]
        frac_txt = "n/a (ORT not capped)" if cap and v.startswith("ort") else f"{100 * frac:.0f} %"
        rs = [a / b for a, b in zip(ms[f"shipped/ibn/{v}"], ms[f"shipped/bn/{v}"], strict=True)]
        hota = raw["hota"][v]["HOTA"]
        label = v + (" (runs fp32: no native bf16)" if emulated else "")
        lines.append(
            f"| {label} | {fps:.1f} | {fps / base_fps:.2f} | {hota:.1f} | {hota - base_hota:+.1f} "
            f"| {t:.1f} | {frac_txt} | {statistics.median(rs):.3f} ({min(rs):.3f}–{max(rs):.3f}) |"
        )
    peak_txt = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks.items())
    return [
        f"- torch (oneDNN) class: **{torch_cls}**{f' (ONEDNN_MAX_CPU_ISA={cap})' if cap else ''}; "
        f"ONNX Runtime class: **{ort_cls}** (not capped by ONEDNN_MAX_CPU_ISA)",
        f"- `--precision auto` with a .pt checkpoint: **{auto.precision}** — {auto.reason}",
        f"- with an int8 export: **{auto8.precision}** — {auto8.reason}",
        f"- matmul peaks (GOP/s, one thread): {peak_txt}",
        "",
        *lines,
    ]


def _run_child(name: str, tmp: Path, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env["OMP_NUM_THREADS"] = str(args.threads)
    if ISAS[name]:
        env["ONEDNN_MAX_CPU_ISA"] = ISAS[name]
    out = tmp / f"{name}.json"
    cmd = [sys.executable, __file__, "--child", str(out), "--plan", args.plan, "--threads", str(args.threads)]
    print(f"== {name}: {'ONEDNN_MAX_CPU_ISA=' + ISAS[name] if ISAS[name] else 'native'}", flush=True)
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--isa", choices=(*ISAS, "all"), default="all", help="which runs (default all)")
    p.add_argument("--plan", choices=tuple(PLANS), default="short", help="size of each run (default short)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    p.add_argument("--out", type=Path, help="write the markdown here (e.g. docs/PERFORMANCE.md)")
    p.add_argument("--json", type=Path, help="write every child's raw numbers here")
    p.add_argument("--note", help="a line put beside the numbers (e.g. what else ran on the machine)")
    p.add_argument("--from-json", type=Path, help="re-render the report of a run saved with --json")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args.plan, args.child, args.threads)
    sys.path.insert(0, str(ROOT))
    names = list(ISAS) if args.isa == "all" else [args.isa]
    raws: dict[str, dict] = {}
    t0 = time.perf_counter()
    if args.from_json:
        raws = json.loads(args.from_json.read_text())
        names = list(raws)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_precision.") as tmp:
            for name in names:
                raws[name] = _run_child(name, Path(tmp), args)
    import onnxruntime
    import torch

    from ibntrack.fileio import atomic_write_text

    model, flags = _cpu_lines()
    command = "python benchmarks/bench_precision.py " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"Command: `{command.strip()}` ({(time.perf_counter() - t0) / 60:.1f} min, plan `{args.plan}`: "
        f"{PLANS[args.plan]})",
        "",
        f"- CPU: {model}, {os.cpu_count()} logical cores; relevant flags: `{flags}`",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; threads: {args.threads}; load average at the end: {load}",
    ]
    if args.note:
        lines += [f"- {args.note}"]
    for name in names:
        title = "native" if not ISAS[name] else f"ONEDNN_MAX_CPU_ISA={ISAS[name]} (an imitation, torch only)"
        lines += ["", f"### {title}", "", *_table(name, raws[name])]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    if args.json:
        atomic_write_text(args.json, json.dumps(raws, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
