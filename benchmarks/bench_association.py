"""Association benchmark: ibntrack's ``MultiObjectTracker`` against ByteTrack of the ``trackers`` package.

Both trackers get *identical* detections (same boxes, scores, classes; ours also gets the embeddings in
the "emb" variant). Two parts, printed side by side in one run:

1. **Latency** against the number of objects: a synthetic scene of ``N`` objects moving with constant
   velocity plus noise, detections made by :func:`ibntrack.eval.detsim.simulate_detections`; ms/frame and
   frames/s of ``update()`` alone (inputs are built before timing), medians of repeated runs.
2. **Quality** on real trajectories: MOTChallenge ground truth (MOT17 train, MOT15 train) turned into
   seeded detections by the same simulator, scored per dataset with :func:`ibntrack.eval.metrics.evaluate`
   (TrackEval: HOTA, IDF1, IDSW, MOTA), plus frames/s on those sequences.

Run from the repository root (the ground truth is read in place, never copied into the repository)::

    OMP_NUM_THREADS=1 python benchmarks/bench_association.py [--gt-root ../shared/data/gt_only] [--quick]

The script sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` to 1 when they are unset
(single-threaded BLAS: the association's matrices are small, and threads only add noise on a shared
machine). Results are written as text tables to stdout, optionally as JSON (``--json``) and a latency plot
(``--plot``; default ``docs/img/association_latency.png`` in full runs).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import configparser
import json
import logging
import platform
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ibntrack.data.mot import write_results
from ibntrack.eval.detsim import DetSimConfig, GtFrame, SimFrame, load_mot_gt, simulate_detections
from ibntrack.eval.metrics import evaluate
from ibntrack.tracking import MultiObjectTracker, TrackerConfig

logger = logging.getLogger("bench_association")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GT_ROOT = REPO_ROOT.parent / "shared" / "data" / "gt_only"
DEFAULT_PLOT = REPO_ROOT / "docs" / "img" / "association_latency.png"
DATASETS = ("MOT17-train", "MOT15-train")

#: Object counts of the latency part (full run / --quick).
SIZES = (10, 25, 50, 100, 200)
QUICK_SIZES = (10, 50)

#: Embedding size of the simulated detections: the network's default ``emb_dim``.
EMB_DIM = 128
#: Synthetic scene: image size (pixels), object heights (pixels), aspect w/h, speed and its noise
#: (pixels/frame), per-object visibility range (drives detsim's misses, scores and embedding noise).
SCENE_SIZE = (1920.0, 1080.0)
SCENE_HEIGHT = (60.0, 160.0)
SCENE_ASPECT = 0.4
SCENE_SPEED_STD = 2.0
SCENE_ACCEL_STD = 0.1
SCENE_VISIBILITY = (0.5, 1.0)

#: ByteTrack (``trackers``) settings: its documented defaults; ``frame_rate`` comes from seqinfo.ini.
PEER_SETTINGS: Mapping[str, float] = {
    "lost_track_buffer": 30,
    "track_activation_threshold": 0.7,
    "minimum_consecutive_frames": 2,
    "minimum_iou_threshold": 0.1,
    "high_conf_det_threshold": 0.6,
}

TRACKER_KEYS = ("ours_emb", "ours_iou", "peer")
TRACKER_LABELS = {
    "ours_emb": "ibntrack (emb + IoU)",
    "ours_iou": "ibntrack (IoU only)",
    "peer": "trackers ByteTrack",
}
QUALITY_METRICS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


# ------------------------------------------------------------------------------------------- trackers
@dataclass
class _Runner:
    """One tracker behind a common interface: inputs prepared once, ``update`` timed, rows read after."""

    key: str
    make: Callable[[float], Any]  # frame_rate -> tracker
    prepare: Callable[[SimFrame], Any]  # detections -> the tracker's own input type
    update: Callable[[Any, Any], Any]  # (tracker, input) -> output
    rows: Callable[[Any], np.ndarray]  # output -> [K, 6] id, x1, y1, x2, y2, score


def _ours(use_embeddings: bool) -> _Runner:
    def prepare(d: SimFrame) -> tuple:
        boxes, scores, emb, classes = d
        return boxes, scores, emb if use_embeddings else None, classes

    def rows(tracks: list) -> np.ndarray:
        if not tracks:
            return np.zeros((0, 6))
        return np.array([[t.track_id, *t.box.tolist(), t.score] for t in tracks], dtype=np.float64)

    return _Runner(
        key="ours_emb" if use_embeddings else "ours_iou",
        make=lambda fps: MultiObjectTracker(TrackerConfig(), frame_rate=fps),
        prepare=prepare,
        update=lambda trk, inp: trk.update(*inp),
        rows=rows,
    )


def _peer() -> _Runner:
    import supervision as sv
    from trackers import ByteTrackTracker

    def prepare(d: SimFrame) -> Any:
        boxes, scores, _, classes = d
        return sv.Detections(xyxy=boxes.astype(np.float64), confidence=scores, class_id=classes)

    def rows(out: Any) -> np.ndarray:
        keep = out.tracker_id >= 0  # -1: not (yet) a confirmed track
        if not keep.any():
            return np.zeros((0, 6))
        ids = out.tracker_id[keep] + 1.0  # the peer counts from 0; MOT ids from 1
        return np.column_stack([ids, out.xyxy[keep], out.confidence[keep]]).astype(np.float64)

    return _Runner(
        key="peer",
        make=lambda fps: ByteTrackTracker(frame_rate=fps, **PEER_SETTINGS),
        prepare=prepare,
        update=lambda trk, inp: trk.update(inp),
        rows=rows,
    )


def make_runners() -> dict[str, _Runner]:
    """The three compared trackers, keyed by :data:`TRACKER_KEYS`."""
    return {"ours_emb": _ours(True), "ours_iou": _ours(False), "peer": _peer()}


def run_sequence(
    runner: _Runner, inputs: Sequence[tuple[int, Any]], frame_rate: float, record: bool
) -> tuple[tuple[float, float], np.ndarray | None]:
    """Track one sequence with a fresh tracker.

    Args:
        runner: the tracker.
        inputs: ``(frame, prepared input)`` in frame order.
        frame_rate: frames per second of the sequence.
        record: also return the output rows.

    Returns:
        ``((cpu, wall) seconds spent in update(), rows or None)``; cpu is the CPU time of this thread
        (``time.thread_time``), wall the elapsed time (``time.perf_counter``); rows ``[K, 7]`` are
        ``frame, id, x, y, w, h, score`` (MOT xywh pixels).
    """
    tracker = runner.make(frame_rate)
    cpu = wall = 0.0
    chunks: list[np.ndarray] = []
    for frame, inp in inputs:
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        out = runner.update(tracker, inp)
        wall += time.perf_counter() - start_wall
        cpu += time.thread_time() - start_cpu
        if record:
            r = runner.rows(out)  # [K, 6] id, xyxy, score
            xywh = np.column_stack([r[:, 1:3], r[:, 3:5] - r[:, 1:3]])
            chunks.append(np.column_stack([np.full(len(r), frame), r[:, :1], xywh, r[:, 5:6]]))
    if not record:
        return (cpu, wall), None
    return (cpu, wall), np.concatenate(chunks) if chunks else np.zeros((0, 7))


def _paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of ``num[i] / den[i]``: runs of the same repeat are close in time, so load drift cancels."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


# --------------------------------------------------------------------------------------------- latency
def synthetic_scene(n_objects: int, n_frames: int, rng: np.random.Generator) -> dict[int, GtFrame]:
    """Ground truth of ``n_objects`` moving with constant velocity plus noise, bouncing off the borders.

    Returns:
        frame (1-based) → ``(boxes [N, 4] xyxy, ids [N], visibility [N], classes [N])`` as
        :func:`simulate_detections` takes it; visibility is fixed per object.
    """
    size = np.array(SCENE_SIZE)
    h = rng.uniform(*SCENE_HEIGHT, n_objects)
    wh = np.stack([SCENE_ASPECT * h, h], axis=1)  # [N, 2]
    pos = rng.uniform(0.0, 1.0, (n_objects, 2)) * (size - wh)  # top-left corners
    vel = rng.normal(0.0, SCENE_SPEED_STD, (n_objects, 2))
    vis = rng.uniform(*SCENE_VISIBILITY, n_objects)
    ids = np.arange(1, n_objects + 1)
    classes = np.zeros(n_objects, dtype=np.int64)
    out: dict[int, GtFrame] = {}
    for frame in range(1, n_frames + 1):
        vel = vel + rng.normal(0.0, SCENE_ACCEL_STD, vel.shape)
        pos = pos + vel
        out_low, out_high = pos < 0.0, pos > size - wh
        vel = np.where(out_low | out_high, -vel, vel)
        pos = np.clip(pos, 0.0, size - wh)
        out[frame] = (np.concatenate([pos, pos + wh], axis=1), ids, vis, classes)
    return out


@dataclass
class LatencyResult:
    """Per object count: CPU and wall ms/frame of every repeat per tracker, detections and tracks."""

    n_objects: int
    frames: int
    dets_per_frame: float
    tracks_per_frame: dict[str, float]
    ms_per_frame: dict[str, list[float]] = field(default_factory=dict)  # CPU time
    wall_ms_per_frame: dict[str, list[float]] = field(default_factory=dict)

    def median_ms(self, key: str, wall: bool = False) -> float:
        return statistics.median((self.wall_ms_per_frame if wall else self.ms_per_frame)[key])

    def speedup(self, key: str, wall: bool = False) -> float:
        """Median over repeats of ``ms(peer) / ms(key)`` within the same repeat (= fps ratio)."""
        ms = self.wall_ms_per_frame if wall else self.ms_per_frame
        return _paired_ratio(ms["peer"], ms[key])


def measure_latency(
    sizes: Sequence[int], frames: int, repeats: int, seed: int, runners: Mapping[str, _Runner] | None = None
) -> list[LatencyResult]:
    """Time ``update()`` of every tracker on identical synthetic detections, for each object count.

    Runs of the trackers are interleaved (repeat 1 of each, then repeat 2, …) so background load hits
    them alike; each run starts a fresh tracker.
    """
    runners = runners if runners is not None else make_runners()
    det_cfg = DetSimConfig(emb_dim=EMB_DIM)
    _warm_up(runners, det_cfg, seed)
    results = []
    for n in sizes:
        rng = np.random.default_rng([seed, n])
        dets = simulate_detections(synthetic_scene(n, frames, rng), rng, det_cfg)
        inputs = {k: [(f, r.prepare(d)) for f, d in dets.items()] for k, r in runners.items()}
        res = LatencyResult(
            n_objects=n,
            frames=frames,
            dets_per_frame=float(np.mean([len(d[1]) for d in dets.values()])),
            tracks_per_frame={},
            ms_per_frame={k: [] for k in runners},
            wall_ms_per_frame={k: [] for k in runners},
        )
        for rep in range(repeats):
            for key, runner in runners.items():
                (cpu, wall), rows = run_sequence(runner, inputs[key], 30.0, record=rep == 0)
                res.ms_per_frame[key].append(1e3 * cpu / frames)
                res.wall_ms_per_frame[key].append(1e3 * wall / frames)
                if rows is not None:
                    res.tracks_per_frame[key] = len(rows) / frames
        logger.info(
            "latency N=%d: %s",
            n,
            ", ".join(f"{k} {res.median_ms(k):.2f} ms" for k in runners),
        )
        results.append(res)
    return results


def _warm_up(runners: Mapping[str, _Runner], det_cfg: DetSimConfig, seed: int) -> None:
    """One short untimed run per tracker (imports, caches, first-call overheads)."""
    rng = np.random.default_rng([seed, 0])
    dets = simulate_detections(synthetic_scene(20, 20, rng), rng, det_cfg)
    for runner in runners.values():
        run_sequence(runner, [(f, runner.prepare(d)) for f, d in dets.items()], 30.0, record=True)


# --------------------------------------------------------------------------------------------- quality
@dataclass
class SeqData:
    """One ground-truth sequence ready for tracking: where TrackEval reads it, and its detections."""

    name: str
    gt_dir: Path  # folder with gt/gt.txt and seqinfo.ini (the original, or a shortened copy with --quick)
    frame_rate: float
    length: int
    detections: dict[int, SimFrame]
    mot17_style: bool  # 9 columns with MOT17 class ids; else MOT15 (10 columns, world coordinates)


def _read_seqinfo(seq_dir: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(seq_dir / "seqinfo.ini")
    return dict(parser["Sequence"])


def _is_mot15_style(gt_file: Path) -> bool:
    """10 columns ``frame,id,x,y,w,h,flag,x3d,y3d,z3d`` (MOT15) rather than MOT16/17's 9 with class ids.

    Only picks the scoring protocol (MOT17 pedestrian preprocessing needs class ids); the files themselves
    are read by ``load_mot_gt`` and ``evaluate``, which know both layouts.
    """
    with open(gt_file) as fh:
        first = fh.readline()
    return len(first.split(",")) == 10


def _prepare_gt(seq_dir: Path, info: Mapping[str, str], length: int, tmp: Path) -> Path:
    """The sequence folder to evaluate against: the original, or a temporary copy cut to ``length`` frames.

    The copy (``--quick`` only; outside the repository, deleted at exit) keeps the rows of frames
    ``1..length`` unchanged and sets ``seqLength`` to ``length``.
    """
    if length == int(info["seqlength"]):
        return seq_dir
    gt_file = seq_dir / "gt" / "gt.txt"
    out_lines = [
        line
        for line in gt_file.read_text().splitlines()
        if line.strip() and int(float(line.split(",")[0])) <= length
    ]
    out = tmp / "gt" / seq_dir.parent.name / seq_dir.name
    (out / "gt").mkdir(parents=True)
    (out / "gt" / "gt.txt").write_text("".join(line + "\n" for line in out_lines))
    ini = configparser.ConfigParser()
    ini["Sequence"] = {**info, "seqlength": str(length)}
    with open(out / "seqinfo.ini", "w") as fh:
        ini.write(fh)
    return out


def load_dataset(
    dataset_dir: Path,
    tmp: Path,
    seed: int,
    det_cfg: DetSimConfig,
    max_seqs: int | None = None,
    max_frames: int | None = None,
) -> list[SeqData]:
    """Read every sequence of a MOTChallenge folder and simulate its detections (seeded per sequence).

    Only evaluated ground truth makes detections: ``flag == 1`` and class 1 (pedestrian) in MOT17;
    every ``flag == 1`` row in MOT15 (no classes there). False positives fall inside the image.
    """
    seq_dirs = sorted(p for p in dataset_dir.iterdir() if (p / "gt" / "gt.txt").is_file())
    if not seq_dirs:
        raise FileNotFoundError(f"no <seq>/gt/gt.txt under {dataset_dir}")
    out = []
    for seq_dir in seq_dirs[:max_seqs]:
        info = _read_seqinfo(seq_dir)
        length = int(info["seqlength"])
        length = min(length, max_frames) if max_frames else length
        gt_dir = _prepare_gt(seq_dir, info, length, tmp)
        gt = load_mot_gt(gt_dir / "gt" / "gt.txt", eval_only=True, classes=(1,), num_frames=length)
        gt = {f: v for f, v in gt.items() if f <= length}
        extent = (0.0, 0.0, float(info["imwidth"]), float(info["imheight"]))
        rng = np.random.default_rng([seed, zlib.crc32(seq_dir.name.encode())])
        dets = simulate_detections(gt, rng, det_cfg, scene_extent=extent)
        mot17_style = not _is_mot15_style(seq_dir / "gt" / "gt.txt")
        out.append(SeqData(seq_dir.name, gt_dir, float(info["framerate"]), length, dets, mot17_style))
    return out


@dataclass
class QualityResult:
    """One dataset: TrackEval metrics and frames/s (every repeat) per tracker."""

    dataset: str
    sequences: list[str]
    frames: int
    dets_per_frame: float
    mot17_preproc: bool
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    fps: dict[str, list[float]] = field(default_factory=dict)  # frames per CPU second
    wall_fps: dict[str, list[float]] = field(default_factory=dict)

    def median_fps(self, key: str, wall: bool = False) -> float:
        return statistics.median((self.wall_fps if wall else self.fps)[key])

    def speedup(self, key: str, wall: bool = False) -> float:
        """Median over repeats of ``fps(key) / fps(peer)`` within the same repeat."""
        fps = self.wall_fps if wall else self.fps
        return _paired_ratio(fps[key], fps["peer"])


def measure_quality(
    dataset: str,
    seqs: Sequence[SeqData],
    tmp: Path,
    repeats: int,
    runners: Mapping[str, _Runner] | None = None,
) -> QualityResult:
    """Track every sequence with every tracker, score per dataset with TrackEval, time ``update()``.

    MOT17-style ground truth (class ids in column 8) is scored with the official MOT17 pedestrian
    protocol (``mot17_preproc=True``); MOT15 class-agnostically. Results of the first repeat are scored
    (tracking is deterministic); frames/s is over the whole dataset, per repeat.
    """
    runners = runners if runners is not None else make_runners()
    mot17_preproc = all(s.mot17_style for s in seqs)
    frames = sum(s.length for s in seqs)
    n_dets = sum(len(d[1]) for s in seqs for d in s.detections.values())
    res = QualityResult(
        dataset=dataset,
        sequences=[s.name for s in seqs],
        frames=frames,
        dets_per_frame=n_dets / max(frames, 1),
        mot17_preproc=mot17_preproc,
        fps={k: [] for k in runners},
        wall_fps={k: [] for k in runners},
    )
    inputs = {
        k: [[(f, r.prepare(d)) for f, d in s.detections.items()] for s in seqs] for k, r in runners.items()
    }
    for rep in range(repeats):
        cpu = dict.fromkeys(runners, 0.0)
        wall = dict.fromkeys(runners, 0.0)
        for i, seq in enumerate(seqs):  # trackers interleaved per sequence: background load hits all alike
            for key, runner in runners.items():
                (c, w), rows = run_sequence(runner, inputs[key][i], seq.frame_rate, record=rep == 0)
                cpu[key] += c
                wall[key] += w
                if rows is not None:
                    results_dir = tmp / "results" / dataset / key
                    results_dir.mkdir(parents=True, exist_ok=True)
                    write_results(results_dir / f"{seq.name}.txt", rows)
        for key in runners:
            res.fps[key].append(frames / cpu[key])
            res.wall_fps[key].append(frames / wall[key])
    for key in runners:
        report = evaluate(
            [s.gt_dir for s in seqs], tmp / "results" / dataset / key, mot17_preproc=mot17_preproc
        )
        res.metrics[key] = dict(report.combined)
    logger.info(
        "quality %s: %s",
        dataset,
        ", ".join(f"{k} HOTA {100 * res.metrics[k]['HOTA']:.1f}" for k in runners),
    )
    return res


# --------------------------------------------------------------------------------------------- report
def machine_info() -> dict[str, str]:
    """CPU model, core count, library versions, BLAS threads."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
    }
    for pkg in ("numpy", "scipy", "lap", "trackers", "supervision", "trackeval"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    return info


def latency_table(results: Sequence[LatencyResult], wall: bool = False) -> str:
    """Markdown table: median ms/frame and frames/s per tracker, speed-up ours/peer (paired fps ratio).

    Args:
        results: from :func:`measure_latency`.
        wall: wall-clock instead of CPU time.
    """
    head = ["objects", "dets/frame"]
    for key in TRACKER_KEYS:
        head += [f"{TRACKER_LABELS[key]} ms", "fps"]
    head += ["speed-up emb", "speed-up IoU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in results:
        cells = [str(r.n_objects), f"{r.dets_per_frame:.1f}"]
        for key in TRACKER_KEYS:
            ms = r.median_ms(key, wall)
            cells += [f"{ms:.2f}", f"{1e3 / ms:.0f}"]
        cells += [f"{r.speedup(k, wall):.2f}×" for k in ("ours_emb", "ours_iou")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_table(res: QualityResult) -> str:
    """Markdown table: combined TrackEval metrics, median frames/s (CPU and wall) per tracker."""
    head = ["tracker", *QUALITY_METRICS, "fps", "fps vs peer", "wall fps", "wall vs peer"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key in TRACKER_KEYS:
        m = res.metrics[key]
        cells = [TRACKER_LABELS[key]]
        for name in QUALITY_METRICS:
            cells.append(str(int(m[name])) if name == "IDSW" else f"{100 * m[name]:.1f}")
        cells += [f"{res.median_fps(key):.0f}", f"{res.speedup(key):.2f}×"]
        cells += [f"{res.median_fps(key, wall=True):.0f}", f"{res.speedup(key, wall=True):.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_plot(results: Sequence[LatencyResult], path: Path) -> None:
    """Median ms/frame against object count, one line per tracker (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    sizes = [r.n_objects for r in results]
    for key, style in zip(TRACKER_KEYS, ("o-", "s--", "^-"), strict=True):
        ax.plot(sizes, [r.median_ms(key) for r in results], style, label=TRACKER_LABELS[key])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("objects in the scene")
    ax.set_ylabel("update() CPU time (ms/frame, median)")
    ax.set_title("Association latency on identical detections (1 thread)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _settings_text(args: argparse.Namespace, sizes: Sequence[int], lat_frames: int) -> str:
    ours = TrackerConfig()
    return "\n".join(
        [
            f"latency: sizes {list(sizes)}, {lat_frames} frames, {args.repeats} repeats (median), "
            f"frame_rate 30, scene {SCENE_SIZE[0]:.0f}x{SCENE_SIZE[1]:.0f}",
            f"quality: {args.quality_repeats} timing repeats (median), detsim seed {args.seed}, "
            f"emb_dim {EMB_DIM}, frame_rate from seqinfo.ini",
            "ours: TrackerConfig() defaults: "
            f"det_thresh {ours.det_thresh}, low_thresh {ours.low_thresh}, new_track_thresh "
            f"{ours.new_track_thresh}, match_thresh_emb {ours.match_thresh_emb}, match_thresh_iou "
            f"{ours.match_thresh_iou} (after the appearance step {ours.match_thresh_iou_after_emb}), "
            f"second_match_thresh {ours.second_match_thresh}, unconfirmed_match_thresh "
            f"{ours.unconfirmed_match_thresh}, track_buffer {ours.track_buffer}",
            "peer: ByteTrackTracker defaults: " + ", ".join(f"{k} {v}" for k, v in PEER_SETTINGS.items()),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gt-root",
        type=Path,
        default=DEFAULT_GT_ROOT,
        help="folder holding MOT17-train/ "
        "and MOT15-train/ (default: ../shared/data/gt_only from the repository root)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 sizes, 2 sequences, few frames")
    parser.add_argument("--repeats", type=int, default=None, help="latency repeats (default 7, quick 2)")
    parser.add_argument(
        "--quality-repeats",
        type=int,
        default=None,
        help="timing repeats on real sequences (default 3, quick 1)",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per latency run (default 200, quick 30)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of scenes and simulated detections")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="latency plot (PNG); default docs/img/association_latency.png, none with --quick",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers as JSON here")
    parser.add_argument("--skip-quality", action="store_true", help="latency part only")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 7)
    args.quality_repeats = args.quality_repeats or (1 if args.quick else 3)
    lat_frames = args.frames or (30 if args.quick else 200)
    sizes = QUICK_SIZES if args.quick else SIZES
    plot = args.plot if args.plot is not None else (None if args.quick else DEFAULT_PLOT)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    started = time.perf_counter()
    info = machine_info()
    print("## Machine\n\n" + ", ".join(f"{k}: {v}" for k, v in info.items()) + "\n")
    print("## Settings\n\n" + _settings_text(args, sizes, lat_frames) + "\n")
    runners = make_runners()

    latency = measure_latency(sizes, lat_frames, args.repeats, args.seed, runners)
    print("## Association latency (median CPU ms/frame; speed-up = median of paired ours fps / peer fps)\n")
    print(latency_table(latency) + "\n")
    print("## Association latency, wall clock (median ms/frame)\n")
    print(latency_table(latency, wall=True) + "\n")
    if plot is not None:
        save_plot(latency, plot)
        print(f"plot: {plot}\n")

    quality: list[QualityResult] = []
    if not args.skip_quality:
        det_cfg = DetSimConfig(emb_dim=EMB_DIM)
        with tempfile.TemporaryDirectory(prefix="bench-assoc-") as tmp_name:
            tmp = Path(tmp_name)
            for dataset in DATASETS:
                seqs = load_dataset(
                    args.gt_root / dataset,
                    tmp,
                    args.seed,
                    det_cfg,
                    max_seqs=1 if args.quick else None,
                    max_frames=50 if args.quick else None,
                )
                res = measure_quality(dataset, seqs, tmp, args.quality_repeats, runners)
                quality.append(res)
                protocol = "MOT17 pedestrian protocol" if res.mot17_preproc else "class-agnostic"
                print(
                    f"## Quality: {dataset} ({len(seqs)} seqs, {res.frames} frames, "
                    f"{res.dets_per_frame:.1f} dets/frame, {protocol}; fps = median frames per CPU second)\n"
                )
                print(quality_table(res) + "\n")

    print(f"total time {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        payload = {
            "machine": info,
            "latency": [vars(r) for r in latency],
            "quality": [vars(r) for r in quality],
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
