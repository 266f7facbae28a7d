"""Speed of the synthetic world generator (``ibntrack.data.synth``), one core.

For each domain, generates a sequence the way ``generate_sequence`` does (simulate, build the background,
render every frame into one buffer, write JPEG quality 90, write gt.txt and seqinfo.ini) and reports
frames per second over the whole sequence, by wall clock and by CPU time of this process, plus the time
of each stage in ms per frame. OpenCV is limited to one thread; pin the process to one core as well for a
one-core number::

    taskset -c 0 python benchmarks/bench_synth.py [--frames 300] [--objects 20] [--size 640x360]

The machine's other load shows in the wall-clock number; the CPU-time number is the generator's own cost.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ibntrack.data.mot import write_gt, write_seqinfo
from ibntrack.data.styles import DOMAINS
from ibntrack.data.synth import SynthScene
from ibntrack.sizes import parse_size


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def bench_domain(domain: str, frames: int, objects: int, size: tuple[int, int], seed: int, out: Path) -> dict:
    """Times one sequence; returns seconds per stage (wall and CPU) and the totals."""
    stages: dict[str, list[float]] = {}

    def lap(name: str, start: tuple[float, float]) -> tuple[float, float]:
        now = _clock()
        stages[name] = [now[0] - start[0], now[1] - start[1]]
        return now

    t0 = t = _clock()
    scene = SynthScene(domain, frames, objects, size, seed)
    t = lap("simulate", t)
    renderer = scene.renderer
    t = lap("background", t)
    buffer = np.empty((size[1], size[0], 3), np.uint8)
    render_wall = render_cpu = write_wall = write_cpu = 0.0
    img_dir = out / domain / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90]
    for frame in range(1, frames + 1):
        a = _clock()
        renderer.render(frame, buffer)
        b = _clock()
        cv2.imwrite(str(img_dir / f"{frame:06d}.jpg"), buffer, params)
        c = _clock()
        render_wall, render_cpu = render_wall + b[0] - a[0], render_cpu + b[1] - a[1]
        write_wall, write_cpu = write_wall + c[0] - b[0], write_cpu + c[1] - b[1]
    stages["render"] = [render_wall, render_cpu]
    stages["jpeg"] = [write_wall, write_cpu]
    t = _clock()
    write_gt(out / domain / "gt" / "gt.txt", scene.gt_rows())
    write_seqinfo(out / domain, domain, 30, frames, size[0], size[1], scene=scene.style.keywords)
    lap("gt", t)
    end = _clock()
    stages["total"] = [end[0] - t0[0], end[1] - t0[1]]
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--repeats", type=int, default=1, help="runs per domain; medians are reported")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    width, height = parse_size(args.size)
    print(f"{args.frames} frames {width}x{height}, {args.objects} objects, seed {args.seed}, OpenCV 1 thread")
    print(
        f"{'domain':8s} {'fps wall':>9s} {'fps cpu':>8s}   ms/frame (cpu): simulate background render jpeg gt"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains.split(","):
            runs = [
                bench_domain(domain, args.frames, args.objects, (width, height), args.seed, Path(tmp))
                for _ in range(args.repeats)
            ]
            med = {k: [statistics.median(r[k][i] for r in runs) for i in (0, 1)] for k in runs[0]}
            per = {k: 1000 * v[1] / args.frames for k, v in med.items()}
            print(
                f"{domain:8s} {args.frames / med['total'][0]:9.1f} {args.frames / med['total'][1]:8.1f}   "
                f"{per['simulate']:.2f} {per['background']:.2f} {per['render']:.2f} {per['jpeg']:.2f} "
                f"{per['gt']:.2f}"
            )


if __name__ == "__main__":
    main()
