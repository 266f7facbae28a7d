"""Number formats end to end: fp32 / bf16 eager PyTorch, fp32 / int8 ONNX Runtime — speed AND accuracy.

One run measures, side by side (issue 15):

1. **The machine's peaks**: a large square matmul in fp32 (``torch.matmul``), bf16 (``torch.matmul`` on
   bf16 tensors, oneDNN/AMX) and int8 (``torch._int_mm``, int8 × int8 → int32), timed in every
   repetition between the networks, so every fraction below is against a peak measured under the same
   load.
2. **Network ms/frame** for each variant — fp32 eager (folded), bf16 eager (folded, autocast,
   channels-last), ORT fp32 and ORT int8 (static QDQ from ``ibntrack.export.quantize``) — streaming at
   batch 1 with sparse IN at ``s = 5``, for the shipped model at its input size and for resnet50-ibn at
   1088×608 (random weights, BN statistics from a few train-mode forwards: latency does not depend on
   training), plus the plain-BN twin of each (same widths, no IBN) so the sparse-IN overhead is measured in
   every format. Frame by frame interleaved in a fresh random order (seeded), each variant keeping its own
   stream state; medians over repetitions. Fraction of peak = conv/linear FLOPs per frame / time / peak
   of the format the variant computes in (int8 variants against the int8 peak).
3. **End-to-end ``track`` frames/s** (read → letterbox → network → decode → association → MOT result
   file) of each variant on the generated cross-domain test sequences, each sequence at the sparsity its
   scene keywords give, variants interleaved per sequence in a random order, median over rounds; and for
   resnet50-ibn on one generated sequence.
4. **HOTA** (TrackEval) of each variant of the shipped model on those cross-domain test sequences
   (held-out seeds, domains the model was not trained on), and its difference from fp32. The int8 graphs
   are calibrated on a separate *summer* sequence (the training domain; no test frame is seen).

Run from the repository root::

    python benchmarks/bench_track.py --quick                    # a few minutes
    python benchmarks/bench_track.py --out docs/BENCHMARKS_PRECISION.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_network import count_flops  # noqa: E402  (the FLOP counter of the network benchmark)

from ibntrack.data.synth import generate_sequence  # noqa: E402
from ibntrack.data.transforms import letterbox, to_tensor  # noqa: E402
from ibntrack.engine.infer import Tracker, track  # noqa: E402
from ibntrack.engine.sources import open_sources  # noqa: E402
from ibntrack.eval.metrics import evaluate  # noqa: E402
from ibntrack.export import export_model  # noqa: E402
from ibntrack.export.quantize import quantize_export  # noqa: E402
from ibntrack.fileio import atomic_write_text  # noqa: E402
from ibntrack.nn import build_model, get_stream_state, set_stream_state  # noqa: E402
from ibntrack.nn.checkpoint import load_model  # noqa: E402
from ibntrack.precision import cpu_has_native_bf16  # noqa: E402
from ibntrack.runtime import ModelCard, OnnxBackend, TorchBackend  # noqa: E402
from ibntrack.scene import scene_sparsity  # noqa: E402
from ibntrack.version import __version__  # noqa: E402

log = logging.getLogger("bench_track")

SHIPPED = Path(__file__).resolve().parents[1] / "ibntrack" / "assets" / "synth_summer_resnet18_ibn.pt"
VARIANTS = ("fp32", "bf16", "ort-fp32", "ort-int8")
FORMAT_OF = {"fp32": "fp32", "bf16": "bf16", "ort-fp32": "fp32", "ort-int8": "int8"}
DOMAINS = ("summer", "winter", "night", "fog", "rain")
FRAME_SIZE = (640, 352)  # (W, H) of the generated sequences, as the demo's
SPARSITY = 5


@dataclass(frozen=True)
class Plan:
    repeats: int
    net_frames: int  # frames per variant per repetition (network timing)
    r50_frames: int
    test_frames: int
    domains: tuple[str, ...]
    rounds: int  # end-to-end rounds over the test sequences
    r50_track_frames: int
    matmul: int
    calib_frames: int
    r50_repeats: int  # resnet50 at 1088x608 is ~100x the shipped model's work: fewer repetitions
    r50_size: tuple[int, int] = (608, 1088)  # (H, W)
    r50: bool = True


PLANS = {
    "quick": Plan(2, 10, 2, 40, ("summer", "winter"), 1, 3, 1024, 8, 1, r50_size=(320, 576)),
    "full": Plan(5, 20, 5, 100, DOMAINS, 3, 6, 2048, 32, 3),
}


# ---------------------------------------------------------------------------------------------- peaks
def _peak_once(fmt: str, n: int) -> float:
    """Ops/s of one ``n × n × n`` matmul in ``fmt`` (best of 3)."""
    gen = torch.Generator().manual_seed(0)
    if fmt == "int8":
        a = torch.randint(-100, 100, (n, n), generator=gen, dtype=torch.int8)
        b = torch.randint(-100, 100, (n, n), generator=gen, dtype=torch.int8)
        fn: Callable[[], object] = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        dtype = torch.float32 if fmt == "fp32" else torch.bfloat16
        a = torch.randn(n, n, generator=gen).to(dtype)
        b = torch.randn(n, n, generator=gen).to(dtype)
        fn = lambda: torch.matmul(a, b)  # noqa: E731
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


# --------------------------------------------------------------------------------------------- models
def _calibrated(arch: str, **options) -> nn.Module:
    """Random weights with BN running statistics from a few train-mode forwards (speed runs only)."""
    torch.manual_seed(0)
    model = build_model(arch, **options).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 128, 224) * 1.2 + 0.1)
    return model.eval()


@dataclass
class Case:
    """One network at one input size: its four variants (and those of its plain-BN twin)."""

    name: str
    input_size: tuple[int, int]
    model: nn.Module
    card: ModelCard
    twin: nn.Module | None = None
    flops: dict[str, int] = field(default_factory=dict)
    onnx: dict[str, Path] = field(default_factory=dict)  # "ibn-fp32", "ibn-int8", "bn-fp32", "bn-int8"


def _export_pair(case: Case, norm: str, model: nn.Module, tmp: Path, calib: list[np.ndarray]) -> None:
    t0 = time.perf_counter()
    fp32 = tmp / f"{case.name}-{norm}.onnx"
    export_model(model, fp32, case.input_size, check=False, card=case.card if norm == "ibn" else None)
    int8 = tmp / f"{case.name}-{norm}.int8.onnx"
    quantize_export(fp32, int8, calib, calibration_frames=len(calib), calibration_source="summer")
    case.onnx[f"{norm}-fp32"], case.onnx[f"{norm}-int8"] = fp32, int8
    log.info("%s %s: exported and quantized in %.0f s", case.name, norm, time.perf_counter() - t0)


def _backend(case: Case, norm: str, variant: str, threads: int, sparsity: int):
    model = case.model if norm == "ibn" else case.twin
    if variant in ("fp32", "bf16"):
        return TorchBackend(model, sparsity=sparsity, precision=variant)
    path = case.onnx[f"{norm}-{variant.removeprefix('ort-')}"]
    backend = OnnxBackend(path, threads=threads)
    backend.set_sparsity(sparsity)
    return backend


# -------------------------------------------------------------------------------------- network timing
class _Stream:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.state = get_stream_state(backend)
        self.times: list[float] = []

    def step(self, x: torch.Tensor) -> None:
        set_stream_state(self.backend, self.state)
        t0 = time.perf_counter()
        self.backend(x)
        self.times.append(time.perf_counter() - t0)
        self.state = get_stream_state(self.backend)


def time_networks(
    cases: Sequence[Case], frames: dict[str, list[torch.Tensor]], plan: Plan, threads: int, rng: random.Random
) -> tuple[dict[tuple[str, str, str], list[float]], dict[str, list[float]]]:
    """Per-repetition mean ms/frame of every (case, norm, variant), and the peaks of every repetition."""
    ms: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    peaks: dict[str, list[float]] = defaultdict(list)
    for rep in range(plan.repeats):
        for fmt in ("fp32", "bf16", "int8"):
            peaks[fmt].append(_peak_once(fmt, plan.matmul))
        for case in cases:
            if case.name != "shipped" and rep >= plan.r50_repeats:
                continue
            norms = ["ibn"] + (["bn"] if case.twin is not None else [])
            streams = {
                (n, v): _Stream(_backend(case, n, v, threads, SPARSITY)) for n in norms for v in VARIANTS
            }
            for s in streams.values():  # warm-up: one refresh frame and one cached frame each
                s.step(frames[case.name][0])
                s.step(frames[case.name][1])
                s.times.clear()
            n = plan.net_frames if case.name == "shipped" else plan.r50_frames
            n = SPARSITY * max(1, round(n / SPARSITY))  # every variant refreshes exactly 1/s of its frames
            for j in range(n):
                keys = list(streams)
                rng.shuffle(keys)
                x = frames[case.name][j % len(frames[case.name])]
                for key in keys:
                    streams[key].step(x)
            for (norm, variant), s in streams.items():
                ms[(case.name, norm, variant)].append(1e3 * statistics.fmean(s.times))
            log.info("repetition %d/%d: %s timed", rep + 1, plan.repeats, case.name)
    return ms, peaks


# --------------------------------------------------------------------------------------- end to end
def run_tracking(
    case: Case, variant: str, seqs: Sequence[Path], out: Path, threads: int, max_frames: int | None = None
) -> float:
    """Track ``seqs`` with one variant (each at its scene's sparsity); returns frames/s over all of them."""
    frames = 0
    elapsed = 0.0
    backend = _backend(case, "ibn", variant, threads, 1)
    trk = Tracker(backend=backend, card=case.card)
    for seq in seqs:
        src = open_sources(seq)[0]
        s = scene_sparsity(src.scene, case.card.train_scene, case.name) if src.scene else SPARSITY
        backend.set_sparsity(s)
        t0 = time.perf_counter()
        (summary,) = track(seq, tracker=trk, out_dir=out, progress=False, max_frames=max_frames)
        elapsed += time.perf_counter() - t0
        frames += summary.frames
    return frames / elapsed


# ------------------------------------------------------------------------------------------- report
def _fmt(values: Sequence[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f}"


def machine_lines(threads: int) -> list[str]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    import onnxruntime

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores, native bf16: {cpu_has_native_bf16()}; "
        f"threads: {threads} (torch and ONNX Runtime)",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, ibntrack {__version__}",
        f"- load average (1/5/15 min) at the end of the run: {load}",
    ]


def report(
    cases: Sequence[Case],
    ms: dict,
    peaks: dict,
    e2e: dict,
    hota: dict,
    r50_e2e: dict,
    command: str,
    threads: int,
    note: str | None,
    seconds: float,
) -> str:
    lines = ["# Number formats end to end (issue 15)", ""]
    if note:
        lines += [f"> {note}", ""]
    lines += [f"Command: `{command}` ({seconds / 60:.1f} min)", "", *machine_lines(threads), ""]
    lines += [
        "## Machine peaks (square matmul, median over repetitions)",
        "",
        "| format | GOP/s |",
        "|---|---|",
    ]
    for fmt in ("fp32", "bf16", "int8"):
        lines.append(f"| {fmt} | {statistics.median(peaks[fmt]) / 1e9:.0f} |")
    lines += ["", f"## Network, streaming batch 1, sparse IN s = {SPARSITY} (median ms/frame)", ""]
    lines += [
        "| model | input (W×H) | variant | IBN ms | × fp32 | GFLOP/s | % of its format's peak "
        "| plain-BN twin ms | IBN / BN |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        base = statistics.median(ms[(case.name, "ibn", "fp32")])
        for v in VARIANTS:
            t = statistics.median(ms[(case.name, "ibn", v)])
            gflops = case.flops["ibn"] / (t / 1e3) / 1e9
            peak = statistics.median(peaks[FORMAT_OF[v]]) / 1e9
            twin = ""
            ratio = ""
            if (case.name, "bn", v) in ms:
                tb = statistics.median(ms[(case.name, "bn", v)])
                rs = [a / b for a, b in zip(ms[(case.name, "ibn", v)], ms[(case.name, "bn", v)], strict=True)]
                twin = f"{tb:.1f}"
                ratio = f"{statistics.median(rs):.3f} ({min(rs):.3f}–{max(rs):.3f})"
            h, w = case.input_size
            lines.append(
                f"| {case.name} | {w}×{h} | {v} | {t:.1f} | {base / t:.2f} | {gflops:.0f} | "
                f"{100 * gflops / peak:.0f} % | {twin} | {ratio} |"
            )
    lines += ["", "## End to end `track` and accuracy (shipped model, cross-domain test sequences)", ""]
    lines += [
        "| variant | frames/s (median) | × fp32 | HOTA | Δ HOTA vs fp32 | per domain |",
        "|---|---|---|---|---|---|",
    ]
    base_fps = statistics.median(e2e["fp32"])
    for v in VARIANTS:
        fps = statistics.median(e2e[v])
        per = ", ".join(f"{d} {x:.1f}" for d, x in hota[v]["per_domain"].items())
        lines.append(
            f"| {v} | {fps:.1f} | {fps / base_fps:.2f} | {hota[v]['HOTA']:.1f} | "
            f"{hota[v]['HOTA'] - hota['fp32']['HOTA']:+.1f} | {per} |"
        )
    if r50_e2e:
        h, w = cases[1].input_size
        lines += ["", f"End to end, resnet50-ibn {w}×{h} (random weights, one generated sequence):", ""]
        lines += ["| variant | frames/s | × fp32 |", "|---|---|---|"]
        b = statistics.median(r50_e2e["fp32"])
        for v in VARIANTS:
            lines.append(
                f"| {v} | {statistics.median(r50_e2e[v]):.2f} | {statistics.median(r50_e2e[v]) / b:.2f} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke-size run (a few minutes)")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and ONNX Runtime (default 1)")
    p.add_argument("--no-r50", action="store_true", help="skip resnet50-ibn at 1088x608")
    p.add_argument("--r50-twin", action="store_true", help="also time plain-BN resnet50 (slow)")
    p.add_argument("--work", type=Path, help="folder for data and exports (default: a temporary one)")
    p.add_argument("--out", type=Path, help="write the markdown report here")
    p.add_argument("--json", type=Path, help="write the raw numbers here")
    p.add_argument("--note", help="a line put at the top of the report (e.g. the machine's load)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("ibntrack").setLevel(logging.WARNING)
    plan = PLANS["quick" if args.quick else "full"]
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    t_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_track.")))
        work.mkdir(parents=True, exist_ok=True)
        # data: a summer calibration sequence and held-out test sequences per domain
        calib_seq = work / "data" / "calib" / "summer-500"
        if not calib_seq.exists():
            generate_sequence(
                calib_seq.parent,
                "summer",
                frames=60,
                objects=12,
                size=FRAME_SIZE,
                seed=500,
                name=calib_seq.name,
            )
        tests = []
        for d in plan.domains:
            seq = work / "data" / "test" / f"{d}-1000"
            if not seq.exists():
                generate_sequence(
                    seq.parent,
                    d,
                    frames=plan.test_frames,
                    objects=12,
                    size=FRAME_SIZE,
                    seed=1000,
                    name=seq.name,
                )
            tests.append(seq)
        calib_bgr = [f for _, f in open_sources(calib_seq)[0]]
        idx = np.linspace(0, len(calib_bgr) - 1, plan.calib_frames).round().astype(int)
        calib = [calib_bgr[i] for i in idx]
        test_bgr = [f for _, f in open_sources(tests[-1])[0]][:20]

        model, ckpt = load_model(SHIPPED)
        card = ModelCard.from_checkpoint(ckpt, source=SHIPPED.name)
        cfg = model.config
        twin = _calibrated(
            cfg.arch.removesuffix("-ibn"),
            num_classes=cfg.num_classes,
            emb_dim=cfg.emb_dim,
            width=cfg.width,
            head_conv=cfg.head_conv,
        )
        cases = [Case("shipped", card.require_input_size(), model.eval(), card, twin)]
        if plan.r50 and not args.no_r50:
            r50 = _calibrated("resnet50-ibn")
            r50_card = ModelCard(config=r50.config, input_size=plan.r50_size)  # --quick: 576x320
            r50_twin = _calibrated("resnet50") if args.r50_twin else None
            cases.append(Case("resnet50-ibn", plan.r50_size, r50, r50_card, r50_twin))
        frames: dict[str, list[torch.Tensor]] = {}
        for case in cases:
            h, w = case.input_size
            case.flops["ibn"] = count_flops(case.model, h, w)
            cal = calib if case.name == "shipped" else calib[:: max(1, len(calib) // 8)]
            _export_pair(case, "ibn", case.model, work, cal)
            if case.twin is not None:
                case.flops["bn"] = count_flops(case.twin, h, w)
                _export_pair(case, "bn", case.twin, work, cal)
            frames[case.name] = [to_tensor(letterbox(f, case.input_size)[0])[None] for f in test_bgr]

        ms, peaks = time_networks(cases, frames, plan, args.threads, rng)

        e2e: dict[str, list[float]] = defaultdict(list)
        for r in range(plan.rounds):
            order = list(VARIANTS)
            rng.shuffle(order)
            for v in order:
                e2e[v].append(run_tracking(cases[0], v, tests, work / "tracks" / v, args.threads))
            log.info("end-to-end round %d/%d done", r + 1, plan.rounds)
        hota: dict[str, dict] = {}
        for v in VARIANTS:
            rep = evaluate(tests, work / "tracks" / v)
            hota[v] = {
                "HOTA": 100 * rep.combined["HOTA"],
                "per_domain": {t.name.split("-")[0]: 100 * rep.per_sequence[t.name]["HOTA"] for t in tests},
            }
        r50_e2e: dict[str, list[float]] = defaultdict(list)
        if len(cases) > 1:
            seq = tests[-1]
            for _ in range(1):
                order = list(VARIANTS)
                rng.shuffle(order)
                for v in order:
                    r50_e2e[v].append(
                        run_tracking(
                            cases[1], v, [seq], work / "tracks-r50" / v, args.threads, plan.r50_track_frames
                        )
                    )
    command = "python benchmarks/bench_track.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    text = report(
        cases,
        ms,
        peaks,
        e2e,
        hota,
        r50_e2e,
        command.strip(),
        args.threads,
        args.note,
        time.perf_counter() - t_start,
    )
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    if args.json:
        raw = {
            "network_ms": {"/".join(k): v for k, v in ms.items()},
            "peaks_ops": peaks,
            "e2e_fps": e2e,
            "hota": hota,
            "r50_e2e_fps": r50_e2e,
            "flops": {c.name: c.flops for c in cases},
        }
        atomic_write_text(args.json, json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
