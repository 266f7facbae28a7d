"""Network latency benchmark: plain BN vs IBN with sparse IN, PyTorch eager vs ONNX Runtime, GFLOP/s.

Everything is streaming inference at batch 1 in eval mode with BN (and cached IN) folded, exactly as the
tracker runs the network (``ibntrack.nn.fold_model``; for ONNX Runtime ``ibntrack.export.OnnxBackend``).
One run measures, side by side:

1. **Sparse IN cost** (issue 4): per-frame latency of the plain-BN model (``resnetNN``) and of the IBN
   model (``resnetNN-ibn``) at sparsity s = 1, 2, 5, 10, the ratio of each to plain BN, and the fraction of
   frames that recomputed IN statistics. Target: IBN at s ≥ 5 at most 3 % slower than plain BN.
2. **PyTorch eager vs ONNX Runtime** (issue 8) for BN, IBN s=1 and IBN s=5. Target: ORT ≥ 1.5× faster than
   eager for resnet50-ibn at 1088×608.
3. **Compute efficiency**: conv/linear FLOPs per frame (forward hooks on the unfolded model) over the
   measured latency, against this CPU's float32 matmul peak (a 2048² ``torch.matmul`` with the same
   threads, timed in every repetition like the networks). Target: 50 % of peak.

Fairness under noise: variants are interleaved FRAME BY FRAME. In every repetition, for every case and
backend, frame j of each variant runs in turn, in a fresh random order per frame (seeded), each variant
keeping its own stream state (saved and restored around its frames with ``get_stream_state`` /
``set_stream_state``). So a slow spell of the machine hits every variant alike, no variant always follows
the same neighbour, and each IBN variant still refreshes exactly 1/s of its frames (``--frames`` is rounded
up to a multiple of every s, i.e. of 10). PyTorch and ONNX Runtime variants run in separate groups, so
one's worker threads never compete with the other's. Reported values are MEDIANS over repetitions
(ratios: the median of the per-repetition ratios of mean frame times, both measured in the same
repetition, with their min–max spread). Weights are random (latency does not depend on training) but
BN/IN statistics come from a few train-mode forwards, so folding is real.

Run from the repository root::

    python benchmarks/bench_network.py --quick                     # smoke run, < 1 min
    python benchmarks/bench_network.py --out docs/BENCHMARKS_NETWORK.md   # full run (quiet machine!)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ibntrack import __version__
from ibntrack.cliargs import input_size_wh
from ibntrack.fileio import atomic_write_text
from ibntrack.nn import (
    build_model,
    fold_model,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_stats,
)

log = logging.getLogger("bench_network")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("resnet18", "resnet50")
ONNX_ARCHS = ("resnet18", "resnet34", "resnet50")
SIZES = ("576x320", "1088x608")  # W×H
SPARSITIES = (1, 2, 5, 10)
ONNX_SPARSITIES = (1, 5)
REPEATS = 5
FRAMES = 10  # per variant and repetition (rounded up to a multiple of s)
QUICK = {"archs": ("resnet18",), "onnx_archs": ("resnet18",), "sizes": ("160x96",), "repeats": 2, "frames": 1}
MATMUL_N = 2048
CALIBRATION_SIZE = (128, 224)  # (H, W) of the train-mode forwards that fill the BN/IN statistics
CALIBRATION_STEPS = 3
TARGET_SPARSE_OVERHEAD = 1.03  # issue 4: IBN at s >= 5 / plain BN
TARGET_ORT_SPEEDUP = 1.5  # issue 8: eager / ORT for resnet50-ibn at 1088x608
TARGET_PEAK_FRACTION = 0.5


# ------------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """One thing to time: a backend running the BN or IBN model at a sparsity."""

    backend: str  # "torch" | "ort"
    norm: str  # "bn" | "ibn"
    s: int = 1

    @property
    def label(self) -> str:
        return "BN" if self.norm == "bn" else f"IBN s={self.s}"


def frames_per_variant(variants: Sequence[Variant], minimum: int) -> int:
    """``minimum`` rounded up to a multiple of every variant's s (so each refreshes exactly 1/s)."""
    period = math.lcm(*(v.s for v in variants)) if variants else 1
    return -(-max(minimum, 1) // period) * period


@dataclass(frozen=True)
class Case:
    arch: str  # "resnet18"
    height: int
    width: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def _parse_size(text: str) -> tuple[int, int]:
    """``"576x320"`` (W×H, multiples of 32) -> ``(H, W)``."""
    return input_size_wh(text)


def _variants(arch: str, archs: Sequence[str], onnx_archs: Sequence[str], onnx: bool) -> list[Variant]:
    torch_s = set(SPARSITIES) if arch in archs else set()
    if onnx and arch in onnx_archs:
        torch_s |= set(ONNX_SPARSITIES)  # eager counterparts of the ORT variants
    out = [Variant("torch", "bn")] + [Variant("torch", "ibn", s) for s in sorted(torch_s)]
    if onnx and arch in onnx_archs:
        out += [Variant("ort", "bn")] + [Variant("ort", "ibn", s) for s in ONNX_SPARSITIES]
    return out


# --------------------------------------------------------------------------------------------- models
def _calibrated(arch: str) -> nn.Module:
    """A random-init model whose BN running statistics come from a few train-mode forwards."""
    torch.manual_seed(0)
    model = build_model(arch).train()
    with torch.no_grad():
        for _ in range(CALIBRATION_STEPS):
            model(torch.randn(2, 3, *CALIBRATION_SIZE) * 1.2 + 0.1)
    return model.eval()


def count_flops(model: nn.Module, height: int, width: int) -> int:
    """Conv2d and Linear FLOPs (2 per multiply-add) of one ``[1, 3, H, W]`` forward of ``model``."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += 2 * output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, height, width))
    finally:
        for h in handles:
            h.remove()
        reset_stream(model)
    return total


class Runners:
    """Folded torch models and ONNX Runtime runners, built once per arch and shared by sizes and s."""

    def __init__(self, tmp: Path, threads: int, flushed: bool = False) -> None:
        self.tmp = tmp
        self.threads = threads
        # denormals as zero in ONNX Runtime too when torch flushes them: the same arithmetic for both
        self.ort_config = {"session.set_denormal_as_zero": "1"} if flushed else {}
        self.models: dict[str, nn.Module] = {}
        self.folded: dict[str, nn.Module] = {}
        self.onnx: dict[str, object] = {}

    def model(self, name: str) -> nn.Module:
        if name not in self.models:
            self.models[name] = _calibrated(name)
        return self.models[name]

    def get(self, arch: str, variant: Variant, example: tuple[int, int]) -> Callable[[torch.Tensor], object]:
        name = arch if variant.norm == "bn" else f"{arch}-ibn"
        if variant.backend == "torch":
            if name not in self.folded:
                self.folded[name] = fold_model(self.model(name))
            return self.folded[name]
        if name not in self.onnx:
            from ibntrack.export import export_model
            from ibntrack.runtime import OnnxBackend

            t0 = time.perf_counter()
            report = export_model(self.model(name), self.tmp / f"{name}.onnx", example, check=False)
            self.onnx[name] = OnnxBackend(report.path, threads=self.threads, session_config=self.ort_config)
            log.info("exported %s in %.1f s", name, time.perf_counter() - t0)
        return self.onnx[name]


# -------------------------------------------------------------------------------------------- timing
@dataclass
class Block:
    per_frame: float  # mean seconds per frame over the block
    refreshed: float  # fraction of frames that recomputed IN statistics
    refresh_times: list[float]
    cached_times: list[float]


class _Stream:
    """One variant's stream on a (possibly shared) runner: its own sparse-IN state and its frame times."""

    def __init__(self, runner, variant: Variant) -> None:
        self.runner, self.variant = runner, variant
        if variant.norm == "ibn":
            set_sparsity(runner, variant.s)
        reset_stream(runner)
        self.state = get_stream_state(runner)
        self.refresh: list[float] = []
        self.cached: list[float] = []

    def step(self, x: torch.Tensor) -> None:
        """Run one frame with this variant's sparsity and stream state; time only the forward."""
        runner = self.runner
        if self.variant.norm == "ibn":
            set_sparsity(runner, self.variant.s)
        set_stream_state(runner, self.state)
        before = stream_stats(runner)["refreshes"]
        t0 = time.perf_counter()
        runner(x)
        dt = time.perf_counter() - t0
        after = stream_stats(runner)["refreshes"]
        self.state = get_stream_state(runner)
        (self.refresh if after > before else self.cached).append(dt)

    def block(self) -> Block:
        times = self.refresh + self.cached
        n_refresh = len(self.refresh) if self.variant.norm == "ibn" else 0
        return Block(sum(times) / len(times), n_refresh / len(times), self.refresh, self.cached)


def _matmul_seconds(a: torch.Tensor, b: torch.Tensor, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return min(times)


@dataclass
class Results:
    cases: list[Case]
    variants: dict[str, list[Variant]]  # by arch
    blocks: dict[tuple[Case, Variant], list[Block]]
    flops: dict[Case, int]
    peak: list[float]  # GFLOP/s per repetition
    seconds: float

    def median_ms(self, case: Case, v: Variant) -> float:
        return 1e3 * statistics.median(b.per_frame for b in self.blocks[case, v])

    def ratios(self, case: Case, v: Variant, ref: Variant) -> list[float]:
        """Per repetition, ``v / ref`` (mean frame times, both measured in the same repetition)."""
        pairs = zip(self.blocks[case, v], self.blocks[case, ref], strict=True)
        return [a.per_frame / b.per_frame for a, b in pairs]

    def ratio(self, case: Case, v: Variant, ref: Variant) -> float:
        """Median over repetitions of ``v / ref``."""
        return statistics.median(self.ratios(case, v, ref))

    def ratio_spread(self, case: Case, v: Variant, ref: Variant) -> str:
        """``"min–max"`` of the per-repetition ratios."""
        rs = self.ratios(case, v, ref)
        return f"{min(rs):.3f}–{max(rs):.3f}"

    def refreshed(self, case: Case, v: Variant) -> float:
        return statistics.median(b.refreshed for b in self.blocks[case, v])

    def frame_kind_ms(self, case: Case, backend: str) -> tuple[float, float]:
        """Median refresh-frame and cached-frame latency of the IBN model over all its blocks."""
        refresh, cached = [], []
        for v in self.variants[case.arch]:
            if v.backend == backend and v.norm == "ibn":
                for b in self.blocks[case, v]:
                    refresh += b.refresh_times
                    cached += b.cached_times
        med = lambda xs: 1e3 * statistics.median(xs) if xs else float("nan")  # noqa: E731
        return med(refresh), med(cached)

    @property
    def peak_gflops(self) -> float:
        return statistics.median(self.peak)


def run(
    archs: Sequence[str],
    onnx_archs: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    repeats: int,
    frames: int,
    threads: int,
    onnx: bool,
    flushed: bool = False,
) -> Results:
    """Build every model and runner, then time them (see the module docstring)."""
    torch.set_num_threads(threads)
    arch_list = list(dict.fromkeys([*archs, *(onnx_archs if onnx else ())]))
    cases = [Case(a, h, w) for a in arch_list for h, w in sizes]
    variants = {a: _variants(a, archs, onnx_archs, onnx) for a in arch_list}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_network_") as tmp:
        runners = Runners(Path(tmp), threads, flushed)
        flops = {
            case: count_flops(runners.model(f"{case.arch}-ibn"), case.height, case.width) for case in cases
        }
        table = {  # built outside inference mode: the ONNX export traces the model
            (case, v): runners.get(case.arch, v, (case.height, case.width))
            for case in cases
            for v in variants[case.arch]
        }
        blocks, peak = _measure(table, cases, variants, repeats, frames)
    return Results(cases, variants, blocks, flops, peak, time.perf_counter() - t_start)


@torch.inference_mode()
def _measure(
    table: dict, cases: list[Case], variants: dict[str, list[Variant]], repeats: int, frames: int
) -> tuple[dict[tuple[Case, Variant], list[Block]], list[float]]:
    """Interleaved repetitions: the blocks per (case, variant) and the matmul GFLOP/s per repetition."""
    blocks: dict[tuple[Case, Variant], list[Block]] = defaultdict(list)
    peak: list[float] = []
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    inputs = {case: torch.randn(1, 3, case.height, case.width) for case in cases}
    rng = random.Random(0)
    for rep in range(-1, repeats):  # rep -1: warm-up (first runs, allocations), not recorded
        t_rep = time.perf_counter()
        for case in cases:
            for backend in ("torch", "ort"):
                vs = [v for v in variants[case.arch] if v.backend == backend]
                n = 2 if rep < 0 else frames_per_variant(vs, frames)
                streams = [_Stream(table[case, v], v) for v in vs]
                for _ in range(n):
                    for stream in rng.sample(streams, len(streams)):
                        stream.step(inputs[case])
                if rep >= 0:
                    for stream in streams:
                        blocks[case, stream.variant].append(stream.block())
        gflops = 2 * MATMUL_N**3 / _matmul_seconds(a, b) / 1e9
        if rep >= 0:
            peak.append(gflops)
        log.info("repetition %d/%d done in %.1f s", rep + 1, repeats, time.perf_counter() - t_rep)
    return dict(blocks), peak


# -------------------------------------------------------------------------------------------- report
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _find(res: Results, case: Case, backend: str, norm: str, s: int = 1) -> Variant | None:
    v = Variant(backend, norm, s)
    return v if (case, v) in res.blocks else None


def report_tables(res: Results) -> str:
    out = []
    bn_t = Variant("torch", "bn")
    rows = []
    for case in res.cases:
        for v in res.variants[case.arch]:
            if v.backend != "torch" or v.s not in SPARSITIES:
                continue
            arch = case.arch if v.norm == "bn" else f"{case.arch}-ibn"
            rows.append(
                [
                    arch,
                    case.size,
                    v.label,
                    f"{res.median_ms(case, v):.1f}",
                    f"{res.ratio(case, v, bn_t):.3f}",
                    "—" if v.norm == "bn" else res.ratio_spread(case, v, bn_t),
                    "—" if v.norm == "bn" else f"{res.refreshed(case, v):.2f}",
                ]
            )
    out += [
        "### 1. Sparse IN cost — PyTorch eager, folded, batch 1 streaming",
        "",
        _table(
            ["model", "input W×H", "variant", "ms/frame", "× plain BN", "range over reps", "refreshed"],
            rows,
        ),
        "",
    ]

    rows = []
    for case in res.cases:
        for backend in ("torch", "ort"):
            if _find(res, case, backend, "ibn", 1) is None:
                continue
            r, c = res.frame_kind_ms(case, backend)
            rows.append(
                [
                    f"{case.arch}-ibn",
                    case.size,
                    "PyTorch" if backend == "torch" else "ONNX Runtime",
                    f"{r:.1f}",
                    f"{c:.1f}",
                    f"{res.median_ms(case, Variant(backend, 'bn')):.1f}",
                ]
            )
    if rows:
        out += [
            "### 2. Refresh frames vs cached frames (medians over all IBN blocks)",
            "",
            _table(
                ["model", "input W×H", "backend", "refresh frame ms", "cached frame ms", "plain BN ms"], rows
            ),
            "",
        ]

    rows = []
    for case in res.cases:
        bn_o = _find(res, case, "ort", "bn")
        if bn_o is None:
            continue
        for norm, s in (("bn", 1), *(("ibn", s) for s in ONNX_SPARSITIES)):
            vt, vo = Variant("torch", norm, s), Variant("ort", norm, s)
            arch = case.arch if norm == "bn" else f"{case.arch}-ibn"
            rows.append(
                [
                    arch,
                    case.size,
                    vo.label,
                    f"{res.median_ms(case, vt):.1f}",
                    f"{res.median_ms(case, vo):.1f}",
                    f"{res.ratio(case, vt, vo):.2f}",
                    f"{res.ratio(case, vo, bn_o):.3f}",
                ]
            )
    if rows:
        out += [
            "### 3. PyTorch eager vs ONNX Runtime (both folded, batch 1 streaming)",
            "",
            _table(
                ["model", "input W×H", "variant", "eager ms", "ORT ms", "ORT speed-up", "ORT × ORT plain BN"],
                rows,
            ),
            "",
        ]

    rows = []
    peak = res.peak_gflops
    for case in res.cases:
        gflop = res.flops[case] / 1e9
        for backend in ("torch", "ort"):
            for norm, s in (("bn", 1), ("ibn", 5)):
                v = _find(res, case, backend, norm, s)
                if v is None:
                    continue
                rate = gflop / (res.median_ms(case, v) / 1e3)
                arch = case.arch if norm == "bn" else f"{case.arch}-ibn"
                rows.append(
                    [
                        arch,
                        case.size,
                        "PyTorch" if backend == "torch" else "ONNX Runtime",
                        v.label,
                        f"{gflop:.1f}",
                        f"{rate:.1f}",
                        f"{100 * rate / peak:.0f} %",
                    ]
                )
    out += [
        f"### 4. Compute efficiency (float32 matmul peak {peak:.1f} GFLOP/s, {MATMUL_N}² matmul, "
        f"median of {len(res.peak)} repetitions)",
        "",
        _table(["model", "input W×H", "backend", "variant", "GFLOP/frame", "GFLOP/s", "of peak"], rows),
        "",
    ]
    return "\n".join(out)


def report_targets(res: Results) -> str:
    lines = []
    worst = None
    for case in res.cases:
        for v in res.variants[case.arch]:
            if v.backend == "torch" and v.norm == "ibn" and v.s >= 5:
                r = res.ratio(case, v, Variant("torch", "bn"))
                if worst is None or r > worst[0]:
                    worst = (r, case, v)
    if worst:
        r, case, v = worst
        ok = "met" if r <= TARGET_SPARSE_OVERHEAD else "NOT met"
        lines.append(
            f"- Issue 4, IBN at s ≥ 5 ≤ {TARGET_SPARSE_OVERHEAD:.2f}× plain BN (PyTorch): worst "
            f"{r:.3f}× ({case.arch}-ibn {case.size}, {v.label}) — **{ok}**."
        )
    target_case = next((c for c in res.cases if c.arch == "resnet50" and c.size == "1088x608"), None)
    if target_case is not None and _find(res, target_case, "ort", "ibn", 1) is not None:
        speedups = [
            res.ratio(target_case, Variant("torch", "ibn", s), Variant("ort", "ibn", s))
            for s in ONNX_SPARSITIES
        ]
        ok = "met" if min(speedups) >= TARGET_ORT_SPEEDUP else "NOT met"
        lines.append(
            f"- Issue 8, ORT ≥ {TARGET_ORT_SPEEDUP}× eager for resnet50-ibn 1088x608: "
            + ", ".join(f"s={s} {x:.2f}×" for s, x in zip(ONNX_SPARSITIES, speedups, strict=True))
            + f" — **{ok}**."
        )
    else:
        lines.append(
            f"- Issue 8, ORT ≥ {TARGET_ORT_SPEEDUP}× eager for resnet50-ibn 1088x608: not measured in "
            "this run (needs resnet50 in --onnx-archs and 1088x608 in --sizes)."
        )
    best = 0.0
    for case in res.cases:
        for v in res.variants[case.arch]:
            best = max(best, res.flops[case] / (res.median_ms(case, v) / 1e3) / 1e9)
    ok = "met" if best >= TARGET_PEAK_FRACTION * res.peak_gflops else "NOT met"
    lines.append(
        f"- {TARGET_PEAK_FRACTION:.0%} of matmul peak: best {best:.1f} of {res.peak_gflops:.1f} GFLOP/s "
        f"({100 * best / res.peak_gflops:.0f} %) — **{ok}**."
    )
    return "\n".join(lines)


def machine_info(threads: int, flushed: bool) -> list[str]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores; threads used: {threads} (torch and ONNX Runtime)",
        f"- Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort_version}, "
        f"ibntrack {__version__}",
        f"- denormals flushed to zero: {'yes' if flushed else 'no (--keep-denormals)'}",
        f"- load average (1/5/15 min) at the end of the run: {load}",
    ]


def write_markdown(
    path: Path, res: Results, command: str, threads: int, flushed: bool, note: str | None
) -> None:
    text = [
        "# Network latency benchmark",
        "",
        "Per-frame latency of the tracking network in streaming inference (batch 1, eval, BN folded, "
        "cached IN folded on skipped frames): plain BN vs IBN with sparse IN, PyTorch eager vs ONNX Runtime, "
        "and compute efficiency. Written by `benchmarks/bench_network.py` (see its docstring for the method: "
        "interleaved variants, medians over repetitions, random weights with calibrated norm statistics).",
        "",
    ]
    if note:
        text += [f"> **{note}**", ""]
    text += [
        "## Machine",
        "",
        *machine_info(threads, flushed),
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        f"Wall time {res.seconds / 60:.1f} min.",
        "",
        "## Results",
        "",
        report_tables(res),
        "## Targets",
        "",
        report_targets(res),
        "",
    ]
    atomic_write_text(path, "\n".join(text))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--archs",
        default=",".join(ARCHS),
        help=f"backbones of the sparse-IN table (plain and -ibn), comma-separated (default "
        f"{','.join(ARCHS)})",
    )
    p.add_argument(
        "--onnx-archs",
        default=",".join(ONNX_ARCHS),
        help=f"backbones of the eager-vs-ONNX-Runtime table (default {','.join(ONNX_ARCHS)}; "
        "'' to skip ONNX)",
    )
    p.add_argument("--sizes", default=",".join(SIZES), help=f"inputs WxH (default {','.join(SIZES)})")
    p.add_argument("--repeats", type=int, default=REPEATS, help=f"repetitions (default {REPEATS})")
    p.add_argument(
        "--frames",
        type=int,
        default=FRAMES,
        help=f"frames per variant and repetition, rounded up to a multiple of every s, i.e. of 10 "
        f"(default {FRAMES})",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help=f"intra-op threads of torch and ONNX Runtime (default torch's: {torch.get_num_threads()})",
    )
    p.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormals to zero (random weights make many; see the module docstring)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: resnet18 at 160x96, 2 repeats, one period per variant (< 1 min)",
    )
    p.add_argument(
        "--out", type=Path, help="also write the report as markdown (e.g. docs/BENCHMARKS_NETWORK.md)"
    )
    p.add_argument("--note", help="a line put at the top of the markdown report (e.g. 'taken under load')")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    archs = [a for a in args.archs.split(",") if a]
    onnx_archs = [a for a in args.onnx_archs.split(",") if a]
    sizes = [_parse_size(s) for s in args.sizes.split(",") if s]
    repeats, frames = args.repeats, args.frames
    if args.quick:
        archs, onnx_archs = list(QUICK["archs"]), list(QUICK["onnx_archs"])
        sizes = [_parse_size(s) for s in QUICK["sizes"]]
        repeats, frames = QUICK["repeats"], QUICK["frames"]
    for a in [*archs, *onnx_archs]:
        if a.endswith("-ibn"):
            p.error(f"--archs/--onnx-archs take plain backbones (resnet18, …), got {a!r}")
    try:
        import onnxruntime  # noqa: F401

        onnx = bool(onnx_archs)
    except ImportError:
        log.warning("onnxruntime is not installed: skipping the ONNX Runtime part")
        onnx = False
    if repeats < 1 or frames < 1 or args.threads < 1:
        p.error("--repeats, --frames and --threads must be >= 1")
    flushed = False
    if not args.keep_denormals:
        flushed = torch.set_flush_denormal(True)
        if not flushed:
            log.warning("this CPU cannot flush denormals to zero: timings may depend on the random weights")
    res = run(archs, onnx_archs, sizes, repeats, frames, args.threads, onnx, flushed)
    command = shlex.join(["python", "benchmarks/bench_network.py", *(sys.argv[1:] if argv is None else argv)])
    print("\n".join(machine_info(args.threads, flushed)))
    print(f"command: {command}\nwall time {res.seconds:.0f} s\n")
    print(report_tables(res))
    print(report_targets(res))
    if args.out:
        write_markdown(args.out, res, command.strip(), args.threads, flushed, args.note)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
