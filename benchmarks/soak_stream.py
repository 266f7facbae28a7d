"""Soak test of streaming inference: an endless generated stream through ``Tracker.update``.

Frames are rendered on the fly by the synthetic world (``ibntrack.data.synth.SynthScene``, never written to
disk); every ``--scene-frames`` frames a new scene (new seed, new people) starts in the same stream, as a
camera cut would — the tracker is never reset, so track ids, removed tracks and cached IN statistics all
accumulate if anything leaks. Every ``--every`` frames the script samples the process's resident memory
(``VmRSS``) and the mean per-frame latency of ``Tracker.update`` over the window (rendering excluded), by
wall clock and by this process's CPU time — the CPU time is what the verdict uses, since other jobs on a
shared machine move the wall clock but not it.

It reports memory growth after warm-up (MiB per 10,000 frames, least-squares slope, and last minus first
sample) and latency drift (median of the last fifth of the windows over the median of the first fifth
after warm-up). Verdict: flat when growth stays under ``--max-growth-mib`` and drift under 1.15.

    OMP_NUM_THREADS=1 python benchmarks/soak_stream.py --frames 100000 --size 192x128 --json runs/soak.json

The shipped model (``ibntrack/assets``) runs at the given size (multiples of 32), folded, sparse IN at
s = 5, one torch thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import signal
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ibntrack.config import InferenceConfig
from ibntrack.data.synth import SynthScene
from ibntrack.engine.infer import Tracker
from ibntrack.fileio import atomic_write_text
from ibntrack.nn.checkpoint import load_model
from ibntrack.sizes import INPUT_MULTIPLE, parse_size

SHIPPED = Path(__file__).resolve().parents[1] / "ibntrack" / "assets" / "synth_summer_resnet18_ibn.pt"
DOMAINS = ("summer", "winter", "night", "fog", "rain")


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux ``/proc/self/status``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def endless_frames(size: tuple[int, int], scene_frames: int, objects: int):
    """Yields ``(scene_index, frame_bgr)`` forever; a new scene and domain every ``scene_frames``."""
    buf = np.empty((size[1], size[0], 3), np.uint8)
    k = 0
    while True:
        scene = SynthScene(DOMAINS[k % len(DOMAINS)], frames=scene_frames, objects=objects, size=size, seed=k)
        for f in range(1, scene_frames + 1):
            yield k, scene.render(f, buf)
        k += 1


def soak(
    frames: int,
    size: tuple[int, int],
    every: int,
    scene_frames: int,
    objects: int,
    sparsity: int,
    on_sample=None,
) -> dict:
    """Runs the stream; Ctrl-C / SIGTERM stop it early and keep the samples taken so far."""
    torch.set_num_threads(1)
    model, ckpt = load_model(SHIPPED, device="cpu")
    cfg = InferenceConfig().replace(stream={"sparsity": sparsity})
    tracker = Tracker(cfg, model, (size[1], size[0]), class_names=ckpt.get("class_names") or ())
    samples: list[dict] = []
    t0 = time.perf_counter()
    result = {"samples": samples, "tracks_reported": 0, "stopped_early": False}
    try:
        _loop(tracker, frames, size, every, scene_frames, objects, samples, result, t0, on_sample)
    except KeyboardInterrupt:
        result["stopped_early"] = True
    return result


def _loop(tracker, frames, size, every, scene_frames, objects, samples, result, t0, on_sample) -> None:
    window, t_window, c_window = 0, 0.0, 0.0
    for n, (_, frame) in enumerate(endless_frames(size, scene_frames, objects), start=1):
        t, c = time.perf_counter(), time.process_time()
        tracks = tracker.update(frame)
        t_window += time.perf_counter() - t
        c_window += time.process_time() - c
        window += 1
        result["tracks_reported"] += len(tracks)
        if n % every == 0:
            samples.append(
                {
                    "frame": n,
                    "rss_mib": round(rss_mib(), 2),
                    "ms_per_frame": round(1e3 * c_window / window, 3),
                    "wall_ms_per_frame": round(1e3 * t_window / window, 3),
                    "live_rows": len(tracker.mot.tracked_tracks) + len(tracker.mot.lost_tracks),
                    "ids_issued": max((t.track_id for t in tracks), default=0),
                    "elapsed_s": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(samples[-1]), flush=True)
            if on_sample is not None:
                on_sample(result)
            window, t_window, c_window = 0, 0.0, 0.0
        if n >= frames:
            break


def analyse(samples: list[dict], warmup: int, max_growth: float) -> dict:
    """Memory slope and latency drift after ``warmup`` frames."""
    after = [s for s in samples if s["frame"] > warmup] or samples
    x = np.asarray([s["frame"] for s in after], np.float64)
    rss = np.asarray([s["rss_mib"] for s in after], np.float64)
    slope = float(np.polyfit(x, rss, 1)[0] * 10_000) if len(after) > 1 else 0.0
    fifth = max(1, len(after) // 5)
    first = statistics.median(s["ms_per_frame"] for s in after[:fifth])
    last = statistics.median(s["ms_per_frame"] for s in after[-fifth:])
    growth = float(rss[-1] - rss[0])
    drift = last / first if first > 0 else float("nan")
    return {
        "warmup_frames": warmup,
        "rss_first_mib": float(rss[0]),
        "rss_last_mib": float(rss[-1]),
        "rss_growth_mib": round(growth, 2),
        "rss_slope_mib_per_10k": round(slope, 3),
        "latency_first_ms": first,
        "latency_last_ms": last,
        "latency_drift": round(drift, 3),
        "flat": bool(growth < max_growth and drift < 1.15),
    }


def markdown(result: dict, args: argparse.Namespace, points: int = 12) -> str:
    a = result["analysis"]
    samples = result["samples"]
    step = max(1, len(samples) // points)
    done = samples[-1]["frame"] if samples else 0
    stopped = f" (stopped early at {done:,} frames)" if result.get("stopped_early") else ""
    lines = [
        f"Soak: {args.frames:,} frames{stopped} at {args.size}, scene cut every {args.scene_frames} frames, "
        f"{args.objects} objects, s = {args.sparsity}; warm-up {a['warmup_frames']:,} frames.",
        "",
        "| frame | RSS MiB | CPU ms/frame | wall ms/frame | tracks held | highest id seen |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in samples[step - 1 :: step]:
        lines.append(
            f"| {s['frame']:,} | {s['rss_mib']:.1f} | {s['ms_per_frame']:.2f} | {s['wall_ms_per_frame']:.2f} "
            f"| {s['live_rows']} | {s['ids_issued']} |"
        )
    lines += [
        "",
        f"RSS after warm-up: {a['rss_first_mib']:.1f} → {a['rss_last_mib']:.1f} MiB "
        f"(growth {a['rss_growth_mib']:+.1f} MiB, "
        f"slope {a['rss_slope_mib_per_10k']:+.2f} MiB per 10k frames); "
        f"CPU latency {a['latency_first_ms']:.2f} → {a['latency_last_ms']:.2f} ms/frame "
        f"(drift ×{a['latency_drift']:.2f}); verdict: {'flat' if a['flat'] else 'NOT flat'}.",
    ]
    return "\n".join(lines) + "\n"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--size", default="192x128", help="frame and network size WxH (multiples of 32)")
    p.add_argument("--every", type=int, default=1000, help="sample every n frames")
    p.add_argument("--scene-frames", type=int, default=600, help="frames per generated scene")
    p.add_argument("--objects", type=int, default=12)
    p.add_argument("--sparsity", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5000, help="frames excluded from the verdict")
    p.add_argument("--max-growth-mib", type=float, default=20.0)
    p.add_argument("--json", type=Path, help="write every sample and the analysis as JSON")
    p.add_argument("--md", type=Path, help="write the markdown summary here")
    args = p.parse_args()
    try:
        w, h = parse_size(args.size, multiple=INPUT_MULTIPLE)
    except ValueError as exc:
        p.error(f"--size: {exc}")
    signal.signal(signal.SIGTERM, _interrupt)  # stop early like Ctrl-C: keep what was measured

    def checkpoint(partial: dict) -> None:  # every sample on disk, so a stopped run still tells
        if args.json:
            atomic_write_text(args.json, json.dumps(partial, indent=1))

    result = soak(args.frames, (w, h), args.every, args.scene_frames, args.objects, args.sparsity, checkpoint)
    result["analysis"] = analyse(result["samples"], args.warmup, args.max_growth_mib)
    result["settings"] = vars(args) | {"json": str(args.json), "md": str(args.md)}
    text = markdown(result, args)
    print(text)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    if args.md:
        atomic_write_text(args.md, text)


if __name__ == "__main__":
    main()
