"""Teacher vs student speed on real footage, side by side in one run (issue 22).

The same frames of ``vtest.avi`` go through (a) the packaged HOG teacher (``ibntrack adapt``'s labeller, 2×
upscale) followed by our motion-only tracker, and (b) each student checkpoint's full ``Tracker.update``
(letterbox → network → decode → association), frame by frame interleaved, one torch thread; medians of
per-frame times. Decoding is excluded (frames are read once, up front).

    python benchmarks/bench_real.py --weights ibntrack/assets/real_vtest_resnet18_ibn.pt --frames 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from real_footage import cpu_summary  # noqa: E402

from ibntrack.adapt.teacher import make_teacher  # noqa: E402
from ibntrack.engine.infer import Tracker  # noqa: E402
from ibntrack.tracking import MultiObjectTracker  # noqa: E402


def read_frames(video: Path, start: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"{video}: no frame could be read from frame {start}")
    return frames


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=ROOT / ".cache" / "footage" / "vtest.avi")
    p.add_argument("--weights", type=Path, nargs="+", required=True, help="student checkpoints")
    p.add_argument("--precision", default="auto", help="students' number format (default auto)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--start", type=int, default=400, help="first frame (0-based; default: the held-out half)")
    args = p.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames = read_frames(args.video, args.start, args.frames)
    teacher = make_teacher("hog")
    mot = MultiObjectTracker(frame_rate=10)
    students = {w.name: Tracker.from_checkpoint(w, precision=args.precision) for w in args.weights}
    for s in students.values():  # warm-up: first-call allocations, oneDNN primitive creation
        for f in frames[:3]:
            s.update(f)
        s.reset()
    times: dict[str, list[float]] = {"teacher (HOG x2 + tracker)": [], **{k: [] for k in students}}
    for frame in frames:
        t0 = time.perf_counter()
        boxes, scores = teacher(frame)
        mot.update(boxes, scores)
        times["teacher (HOG x2 + tracker)"].append(time.perf_counter() - t0)
        for name, s in students.items():
            t0 = time.perf_counter()
            s.update(frame)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["teacher (HOG x2 + tracker)"])
    print(
        f"CPU: {cpu_summary()}; 1 thread; {len(frames)} frames of {args.video.name} from frame {args.start}; "
        f"students in {args.precision}"
    )
    print("| run | ms/frame (median) | frames/s | speed vs teacher |\n|---|---|---|---|")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"| {name} | {1000 * m:.1f} | {1 / m:.1f} | {base / m:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
