"""Batch tracking on Ray (issue 24): 1 vs 2 local workers, overhead per source, and the cost of chunking.

Part ``throughput``: 8 generated sequences tracked with the shipped model (``ibntrack/assets``, one torch
thread per worker) by

* ``local``  — :func:`ibntrack.track_many` with ``engine="local"`` (this process, one worker);
* ``ray-1`` / ``ray-2`` — one or two Ray actors (``num_cpus=1`` each) on a local cluster started once
  (``ray.init(num_cpus=2)``);
* ``2 procs`` — the control: two plain processes (no Ray, started and warmed beforehand), each running the
  local engine on half of the sources. ``local / 2 procs`` is what two workers can gain on this machine
  at this moment (other jobs share its cores), the ceiling against which ``ray-2 / ray-1`` is read.

For each Ray variant two times are taken: *end to end* (``track_many`` as a user calls it: actors
started, weights shipped, every source tracked and published) and *steady state* (the same calls on
actors already started and warmed by one source — the regime of a long archive). Repetitions interleave
the variants in a rotating order; medians are reported. Ratios: ``ray-2 / ray-1`` throughput (goal ≥ 1.7×),
and the overhead per source of Ray over the local engine, ``(steady ray-1 − local) / sources`` (goal
≤ 0.5 s). Every variant's result files are checked byte-identical to the local engine's.

Part ``overhead``: Ray's own cost per source, where the work is tiny (16 one-frame sources): steady
state of one Ray actor minus the local engine's, per source (goal ≤ 0.5 s). Less sensitive to the other
jobs of a shared machine than the difference of two long runs above.

Part ``chunking``: the identity cost of ``--chunk-frames N --chunk-overlap K`` against one-piece tracking
(HOTA, IDSW, IDF1 by TrackEval) on generated sequences with ground truth. The network runs once per
sequence at exact IN (s = 1, where a frame's detections do not depend on the frames before it, so a
chunk's detections are the one-piece run's); the association is replayed per chunk
(:func:`ibntrack.tune.replay`, what ``ibntrack track`` writes) and the chunks are joined by
:func:`ibntrack.distributed.stitch.stitch_chunks`, the rule ``track_many`` applies.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ray.py           # both parts, ~10 min on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ray.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from ibntrack.data.synth import generate_sequence  # noqa: E402
from ibntrack.distributed import track_many  # noqa: E402
from ibntrack.distributed.engines import LocalEngine, RayEngine, require_ray  # noqa: E402
from ibntrack.distributed.plan import chunk_jobs, plan_sources  # noqa: E402
from ibntrack.distributed.stitch import stitch_chunks  # noqa: E402
from ibntrack.distributed.store import fingerprint  # noqa: E402
from ibntrack.distributed.worker import Job, TrackOptions, pack_weights  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "ibntrack" / "assets" / "synth_summer_resnet18_ibn.pt"


def cpu_flags() -> str:
    """CPU model and the vector flags that matter to torch/oneDNN (from /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    keep = [
        f
        for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
        if f in flags
    ]
    return f"{model}; {os.cpu_count()} logical CPUs; flags: {' '.join(keep)}"


def _archive(root: Path, n: int, frames: int, seed0: int = 100) -> Path:
    for i in range(n):
        generate_sequence(root, domain="summer", frames=frames, objects=8, seed=seed0 + i, name=f"seq{i:02d}")
    return root


# ------------------------------------------------------------------------------------------- throughput
def _steady(weights: Path, root: Path, out: Path, workers: int, engine: str = "ray") -> tuple[float, float]:
    """Wall seconds to track every source on ``workers`` workers already started and warmed by one source,
    and the CPU seconds the workers' processes spent on them."""
    options = TrackOptions(threads=1)
    blob = pack_weights(weights)
    fp = fingerprint(blob, options)
    jobs = [Job(p.name, p.spec) for p in plan_sources([str(root)])]
    if engine == "ray":
        eng: Any = RayEngine(blob, options, str(out), workers=workers, num_cpus=1)
    else:
        eng = LocalEngine(blob, options, str(out))
    try:
        list(eng.map([("run", (jobs[0], fp + "warm"))] * workers))  # start and warm every actor
        t0 = time.perf_counter()
        outcomes = [o for _, o in eng.map([("run", (j, fp)) for j in jobs])]
        seconds = time.perf_counter() - t0
    finally:
        eng.close()
    assert all(o["status"] == "done" for o in outcomes), outcomes
    return seconds, sum(o["cpu_seconds"] for o in outcomes)


def _half(specs: list[str], weights: str, out: str) -> int:
    return len(track_many(specs, weights, out_dir=out, engine="local", threads=1).done)


def _two_processes(weights: Path, root: Path, out: Path) -> float:
    """Seconds for two warmed plain processes to track the sources, half each (the machine's ceiling)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    specs = [p.spec for p in plan_sources([str(root)])]
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_half, [specs[:1], specs[1:2]], [str(weights)] * 2, [str(out / "warm")] * 2))
        t0 = time.perf_counter()
        done = sum(pool.map(_half, [specs[0::2], specs[1::2]], [str(weights)] * 2, [str(out)] * 2))
        seconds = time.perf_counter() - t0
    assert done == len(specs)
    return seconds


def throughput(args: argparse.Namespace) -> list[str]:
    ray = require_ray()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    root = _archive(tmp / "data", args.sources, args.frames)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    keys = ("local", "2 procs", "ray-1 e2e", "ray-2 e2e", "ray-1", "ray-2")
    times: dict[str, list[float]] = {k: [] for k in keys}
    cpu_share: dict[str, list[float]] = {"ray-1": [], "ray-2": []}  # CPU seconds per wall second
    order = ["local", "ray-1", "ray-2"]
    try:
        for rep in range(args.repeats):
            for variant in order[rep % 3 :] + order[: rep % 3]:
                out = tmp / f"out-{variant}-{rep}"
                t0 = time.perf_counter()
                if variant == "local":
                    r = track_many(root, args.weights, out_dir=out, engine="local", threads=1)
                    times["local"].append(time.perf_counter() - t0)
                    times["2 procs"].append(_two_processes(args.weights, root, tmp / f"procs-{rep}"))
                else:
                    w = int(variant[-1])
                    r = track_many(root, args.weights, out_dir=out, engine="ray", workers=w, threads=1)
                    times[f"{variant} e2e"].append(time.perf_counter() - t0)
                    wall, cpu = _steady(args.weights, root, tmp / f"steady-{variant}-{rep}", w)
                    times[variant].append(wall)
                    cpu_share[variant].append(cpu / wall)
                assert len(r.done) == args.sources, r.summary()
                key = variant if variant == "local" else variant + " e2e"
                print(f"rep {rep} {variant}: {times[key][-1]:.1f} s", flush=True)
    finally:
        ray.shutdown()
    ref = tmp / "out-local-0"
    same = all(
        (tmp / f"out-{v}-{r}" / f.name).read_bytes() == f.read_bytes()
        for v in order
        for r in range(args.repeats)
        for f in ref.glob("*.txt")
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    n, frames = args.sources, args.sources * args.frames
    lines = [
        f"{n} sources x {args.frames} frames (640x360 generated, shipped resnet18-ibn at 384x224, 1 torch "
        f"thread per worker), median of {args.repeats} repetitions; result files byte-identical across "
        f"variants: {same}",
        "",
        "| variant | end to end s | steady state s | frames/s (steady) |",
        "|---|---|---|---|",
        f"| local (1 worker, in process) | {med['local']:.1f} | {med['local']:.1f} | "
        f"{frames / med['local']:.1f} |",
    ]
    lines.append(f"| 2 procs (control, no Ray) | - | {med['2 procs']:.1f} | {frames / med['2 procs']:.1f} |")
    for v in ("ray-1", "ray-2"):
        lines.append(f"| {v} | {med[v + ' e2e']:.1f} | {med[v]:.1f} | {frames / med[v]:.1f} |")
    share = {v: statistics.median(cpu_share[v]) for v in cpu_share}
    ceiling = [a / b for a, b in zip(times["local"], times["2 procs"], strict=True)]
    ratio = [a / b for a, b in zip(times["ray-1"], times["ray-2"], strict=True)]
    ratio_e2e = [a / b for a, b in zip(times["ray-1 e2e"], times["ray-2 e2e"], strict=True)]
    overhead = [(r1 - lo) / n for r1, lo in zip(times["ray-1"], times["local"], strict=True)]
    lines += [
        "",
        f"- throughput ray-2 / ray-1 (steady): **{statistics.median(ratio):.2f}x** "
        f"(min {min(ratio):.2f}, max {max(ratio):.2f}); end to end {statistics.median(ratio_e2e):.2f}x "
        "(goal >= 1.7x)",
        f"- the machine's ceiling for two workers, local / 2 procs: {statistics.median(ceiling):.2f}x "
        f"(min {min(ceiling):.2f}, max {max(ceiling):.2f})",
        f"- CPU the workers obtained (CPU s per wall s, steady): ray-1 {share['ray-1']:.2f}, "
        f"ray-2 {share['ray-2']:.2f} cores ({share['ray-2'] / share['ray-1']:.2f}x); throughput ratio / CPU "
        f"ratio = {statistics.median(ratio) / (share['ray-2'] / share['ray-1']):.2f} (1.0: two workers turn "
        "all the CPU they get into throughput)",
        f"- overhead per source, steady ray-1 vs local: **{statistics.median(overhead):+.3f} s** "
        f"(min {min(overhead):+.3f}, max {max(overhead):+.3f}; goal <= 0.5 s)",
        f"- fixed start-up of a run (actors, weights, first source): "
        f"{statistics.median(times['ray-1 e2e']) - statistics.median(times['ray-1']):.1f} s (ray-1)",
    ]
    return lines


def overhead(args: argparse.Namespace) -> list[str]:
    """Ray's cost per source where the work is tiny (one-frame sources): steady ray-1 minus local."""
    ray = require_ray()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-overhead-"))
    n = args.overhead_sources
    root = _archive(tmp / "data", n, 1, seed0=300)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    per_source: list[float] = []
    local: list[float] = []
    try:
        for rep in range(args.repeats):
            t_local, _ = _steady(args.weights, root, tmp / f"local-{rep}", 1, engine="local")
            t_ray, _ = _steady(args.weights, root, tmp / f"ray-{rep}", 1)
            local.append(t_local / n)
            per_source.append((t_ray - t_local) / n)
    finally:
        ray.shutdown()
    return [
        f"{n} one-frame sources, steady state (workers started and warmed), median of {args.repeats}: "
        f"local {1e3 * statistics.median(local):.0f} ms per source; Ray adds "
        f"**{1e3 * statistics.median(per_source):+.0f} ms per source** (min {1e3 * min(per_source):+.0f}, "
        f"max {1e3 * max(per_source):+.0f}; goal <= 500 ms)",
    ]


# --------------------------------------------------------------------------------------------- chunking
def chunking(args: argparse.Namespace) -> list[str]:
    from ibntrack.data.motio import write_results
    from ibntrack.eval.metrics import evaluate
    from ibntrack.tune import CachedSequence, cache_sequences, replay

    tmp = Path(tempfile.mkdtemp(prefix="bench-chunks-"))
    root = _archive(tmp / "data", args.chunk_sequences, args.chunk_length, seed0=200)
    t0 = time.perf_counter()
    seqs = cache_sequences(root, args.weights, sparsity=1, progress=False)
    t_net = time.perf_counter() - t0
    configs = [(None, 0)] + [(n, k) for n in args.chunk_frames for k in args.overlaps]
    lines = [
        f"{len(seqs)} generated summer sequences x {args.chunk_length} frames (640x360, 8 objects), shipped "
        f"resnet18-ibn at s = 1; network pass {t_net:.0f} s; association replayed per chunk and stitched",
        "",
        "| chunking | chunks | HOTA | IDF1 | IDSW | MOTA | HOTA cost | IDSW added |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = None
    for n, k in configs:
        out = tmp / f"res-{n}-{k}"
        chunks = 0
        for seq in seqs:
            config = seq.tracker_config
            assert config is not None
            if n is None:
                rows = replay(seq, config)
                chunks += 1
            else:
                from ibntrack.distributed.plan import Planned

                parts = []
                for job in chunk_jobs(Planned(seq.name, str(seq.path), len(seq.frames)), n, k):
                    lo, hi = job.read_start, job.end
                    piece = CachedSequence(
                        seq.name, seq.path, seq.frame_rate, seq.frames[lo:hi], seq.mot_class
                    )
                    own_from = seq.frames[job.own_start][0]
                    parts.append((own_from, replay(piece, config)))
                rows = stitch_chunks(parts)
                chunks += len(parts)
            write_results(out / f"{seq.name}.txt", rows)
        m = evaluate(root, out).combined
        if base is None:
            base = m
        label = "one piece" if n is None else f"N={n}, K={k}"
        lines.append(
            f"| {label} | {chunks} | {100 * m['HOTA']:.1f} | {100 * m['IDF1']:.1f} | {int(m['IDSW'])} | "
            f"{100 * m['MOTA']:.1f} | {100 * (m['HOTA'] - base['HOTA']):+.1f} | "
            f"{int(m['IDSW'] - base['IDSW']):+d} |"
        )
        print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("all", "throughput", "overhead", "chunking"), default="all")
    p.add_argument("--overhead-sources", type=int, default=16, help="one-frame sources (overhead part)")
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    p.add_argument("--sources", type=int, default=8)
    p.add_argument("--frames", type=int, default=24, help="frames per source (throughput)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk-sequences", type=int, default=4)
    p.add_argument("--chunk-length", type=int, default=300)
    p.add_argument("--chunk-frames", type=int, nargs="+", default=[75, 150])
    p.add_argument("--overlaps", type=int, nargs="+", default=[0, 5, 15, 30])
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 4 short sources, 1 repeat, 1 short sequence"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sources, args.frames, args.repeats, args.overhead_sources = 4, 4, 1, 4
        args.chunk_sequences, args.chunk_length, args.chunk_frames, args.overlaps = 1, 40, [20], [0, 5]
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    print(
        f"# bench_ray.py {' '.join(sys.argv[1:])}\n# {cpu_flags()}\n# torch {torch.__version__}", flush=True
    )
    if args.part in ("all", "throughput"):
        print("\n".join(["", "## 1 vs 2 workers", "", *throughput(args)]), flush=True)
    if args.part in ("all", "overhead"):
        print("\n".join(["", "## overhead per source", "", *overhead(args)]), flush=True)
    if args.part in ("all", "chunking"):
        print("\n".join(["", "## chunking cost", "", *chunking(args)]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
