"""Association benchmark: ibntrack's ``MultiObjectTracker`` against the trackers of the ``trackers`` package.

Every tracker gets *identical* detections (same boxes, scores, classes; ours also gets the embeddings in
the "emb" variants): SORT, ByteTrack, OC-SORT and BoT-SORT of ``trackers`` (defaults; BoT-SORT without
camera-motion compensation, as no frames are given) and ours with and without embeddings. Two parts:

1. **Latency** against the number of objects (5, 15, 50, 100): a synthetic scene of ``N`` objects moving
   with constant velocity plus noise; ms/frame of ``update()`` alone (inputs are built before timing),
   medians of repeated, interleaved runs; speed-ups against ByteTrack.
2. **Quality** on real trajectories: MOTChallenge ground truth turned into seeded detections by a
   *hostile* simulator (:meth:`ibntrack.eval.detsim.DetSimConfig.hostile`: occlusion from box overlap,
   occluded targets missed or scored low, false positives and duplicates, embeddings clean when visible
   and close to random — with the occluder mixed in — when hidden), scored with TrackEval (HOTA, IDF1,
   IDSW, MOTA) on the sets of :data:`SETS`: MOT17, MOT17 subsampled to about 10 fps, MOT15's driving
   sequences, the other MOT15 sequences and a drone-like synthetic set (55 small objects, shaking
   camera). Ours with embeddings runs at every embedding quality level of :data:`EMB_QUALITIES` (clean,
   occlusion-dependent, weak, random) on detections whose boxes are identical across levels.

Run from the repository root (the ground truth is read in place, never copied into the repository;
subsampled and synthetic ground truth goes to a temporary folder)::

    OMP_NUM_THREADS=1 python benchmarks/bench_association.py [--gt-root ../shared/data/gt_only] [--quick]
        [--sets MOT17,MOT15-driving] [--trackers ours_emb,ours_iou,sort] [--per-sequence]

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
import dataclasses
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
from ibntrack.data.motio import read_seqinfo
from ibntrack.eval.detsim import DetSimConfig, GtFrame, SimFrame, load_mot_gt, simulate_detections
from ibntrack.eval.metrics import evaluate
from ibntrack.tracking import MultiObjectTracker, TrackerConfig

logger = logging.getLogger("bench_association")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GT_ROOT = REPO_ROOT.parent / "shared" / "data" / "gt_only"
DEFAULT_PLOT = REPO_ROOT / "docs" / "img" / "association_latency.png"
DATASETS = ("MOT17-train", "MOT15-train")

#: Object counts of the latency part (full run / --quick).
SIZES = (5, 15, 50, 100)
QUICK_SIZES = (5, 15)

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

#: Peers of the ``trackers`` package (class name, settings): documented defaults except ``frame_rate``
#: (from seqinfo.ini); BoT-SORT without camera-motion compensation (no frames here; it has no ReID).
PEERS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "sort": ("SORTTracker", {}),
    "bytetrack": ("ByteTrackTracker", {}),
    "ocsort": ("OCSORTTracker", {}),
    "botsort": ("BoTSORTTracker", {"enable_cmc": False}),
}

#: Embedding quality levels of the sweep (detsim noise at visibility 1 / 0, occluder mix). "occl" is the
#: hostile default: clean when visible, close to random when hidden.
EMB_QUALITIES: Mapping[str, dict[str, float]] = {
    "clean": {"emb_noise_visible": 0.1, "emb_noise_occluded": 0.3, "emb_occluder_mix": 0.0},
    "occl": {},
    "weak": {"emb_noise_visible": 1.5, "emb_noise_occluded": 4.0},
    "random": {"emb_noise_visible": 30.0, "emb_noise_occluded": 30.0},
}
DEFAULT_QUALITY = "occl"

TRACKER_KEYS = (
    "ours_emb",
    "ours_emb_clean",
    "ours_emb_weak",
    "ours_emb_random",
    "ours_iou",
    "sort",
    "bytetrack",
    "ocsort",
    "botsort",
)
TRACKER_LABELS = {
    "ours_emb": "ibntrack, emb (occlusion-dependent)",
    "ours_emb_clean": "ibntrack, emb clean",
    "ours_emb_weak": "ibntrack, emb weak",
    "ours_emb_random": "ibntrack, emb random",
    "ours_iou": "ibntrack, no embeddings",
    "sort": "trackers SORT",
    "bytetrack": "trackers ByteTrack",
    "ocsort": "trackers OC-SORT",
    "botsort": "trackers BoT-SORT (no CMC)",
}
PEER_KEYS = tuple(PEERS)
#: The peer that speed-ups are measured against.
SPEED_REF = "bytetrack"
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
    quality: str | None = None  # embedding quality level whose detections it reads (None: the default)


def _ours(use_embeddings: bool, key: str | None = None, quality: str | None = None) -> _Runner:
    def prepare(d: SimFrame) -> tuple:
        boxes, scores, emb, classes = d
        return boxes, scores, emb if use_embeddings else None, classes

    def rows(tracks: list) -> np.ndarray:
        if not tracks:
            return np.zeros((0, 6))
        return np.array([[t.track_id, *t.box.tolist(), t.score] for t in tracks], dtype=np.float64)

    return _Runner(
        key=key or ("ours_emb" if use_embeddings else "ours_iou"),
        make=lambda fps: MultiObjectTracker(TrackerConfig(), frame_rate=fps),
        prepare=prepare,
        update=lambda trk, inp: trk.update(*inp),
        rows=rows,
        quality=quality,
    )


def _peer(key: str) -> _Runner:
    import supervision as sv
    import trackers

    cls, settings = getattr(trackers, PEERS[key][0]), PEERS[key][1]

    def prepare(d: SimFrame) -> Any:
        boxes, scores, _, classes = d
        return sv.Detections(xyxy=boxes.astype(np.float64), confidence=scores, class_id=classes)

    def rows(out: Any) -> np.ndarray:
        keep = out.tracker_id >= 0  # -1: not (yet) a confirmed track
        if not keep.any():
            return np.zeros((0, 6))
        ids = out.tracker_id[keep] + 1.0  # the peers count from 0; MOT ids from 1
        return np.column_stack([ids, out.xyxy[keep], out.confidence[keep]]).astype(np.float64)

    return _Runner(
        key=key,
        make=lambda fps: cls(frame_rate=fps, **settings),
        prepare=prepare,
        update=lambda trk, inp: trk.update(inp),
        rows=rows,
    )


def make_runners(keys: Sequence[str] | None = None) -> dict[str, _Runner]:
    """The compared trackers, keyed by :data:`TRACKER_KEYS` (or the subset ``keys``, in that order)."""
    keys = list(keys) if keys is not None else list(TRACKER_KEYS)
    unknown = [k for k in keys if k not in TRACKER_LABELS]
    if unknown:
        raise ValueError(f"unknown tracker(s) {unknown}; known: {', '.join(TRACKER_LABELS)}")
    out: dict[str, _Runner] = {}
    for key in keys:
        if key == "ours_iou":
            out[key] = _ours(False)
        elif key == "ours_emb":
            out[key] = _ours(True)
        elif key.startswith("ours_emb_"):
            out[key] = _ours(True, key, quality=key.removeprefix("ours_emb_"))
        else:
            out[key] = _peer(key)
    return out


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
def synthetic_scene(
    n_objects: int,
    n_frames: int,
    rng: np.random.Generator,
    height: tuple[float, float] = SCENE_HEIGHT,
    speed_std: float = SCENE_SPEED_STD,
    camera_std: float = 0.0,
) -> dict[int, GtFrame]:
    """Ground truth of ``n_objects`` moving with constant velocity plus noise, bouncing off the borders.

    Args:
        n_objects, n_frames: scene size.
        rng: the generator.
        height: range of object heights (pixels).
        speed_std: std of the initial velocity (pixels/frame).
        camera_std: a moving camera: every box also shifts by the camera's motion, a random walk whose
            per-frame displacement has this std (pixels) and changes smoothly (drone / hand-held); the
            objects never leave the scene (positions wrap inside the image).

    Returns:
        frame (1-based) → ``(boxes [N, 4] xyxy, ids [N], visibility [N], classes [N])`` as
        :func:`simulate_detections` takes it; visibility is fixed per object.
    """
    size = np.array(SCENE_SIZE)
    h = rng.uniform(*height, n_objects)
    wh = np.stack([SCENE_ASPECT * h, h], axis=1)  # [N, 2]
    pos = rng.uniform(0.0, 1.0, (n_objects, 2)) * (size - wh)  # top-left corners
    vel = rng.normal(0.0, speed_std, (n_objects, 2))
    vis = rng.uniform(*SCENE_VISIBILITY, n_objects)
    ids = np.arange(1, n_objects + 1)
    classes = np.zeros(n_objects, dtype=np.int64)
    cam_vel = np.zeros(2)
    cam = np.zeros(2)
    out: dict[int, GtFrame] = {}
    for frame in range(1, n_frames + 1):
        vel = vel + rng.normal(0.0, SCENE_ACCEL_STD, vel.shape)
        pos = pos + vel
        out_low, out_high = pos < 0.0, pos > size - wh
        vel = np.where(out_low | out_high, -vel, vel)
        pos = np.clip(pos, 0.0, size - wh)
        if camera_std > 0:
            cam_vel = 0.8 * cam_vel + rng.normal(0.0, camera_std, 2)
            cam = cam + cam_vel
        shown = pos + cam
        out[frame] = (np.concatenate([shown, shown + wh], axis=1), ids, vis, classes)
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

    def speedup(self, key: str, wall: bool = False, ref: str = SPEED_REF) -> float:
        """Median over repeats of ``ms(ref) / ms(key)`` within the same repeat (= fps ratio)."""
        ms = self.wall_ms_per_frame if wall else self.ms_per_frame
        return _paired_ratio(ms[ref], ms[key]) if ref in ms else float("nan")


def measure_latency(
    sizes: Sequence[int], frames: int, repeats: int, seed: int, runners: Mapping[str, _Runner] | None = None
) -> list[LatencyResult]:
    """Time ``update()`` of every tracker on identical synthetic detections, for each object count.

    Detections come from :meth:`DetSimConfig.hostile`. Runs of the trackers are interleaved (repeat 1 of
    each, then repeat 2, …) so background load hits them alike; each run starts a fresh tracker.
    """
    runners = runners if runners is not None else make_runners(["ours_emb", "ours_iou", *PEER_KEYS])
    det_cfg = DetSimConfig.hostile(EMB_DIM)
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
        logger.info("latency N=%d: %s", n, ", ".join(f"{k} {res.median_ms(k):.2f} ms" for k in runners))
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
    gt_dir: Path  # folder with gt/gt.txt and seqinfo.ini (the original, or a temporary derived copy)
    frame_rate: float
    length: int
    detections: dict[str, dict[int, SimFrame]]  # per embedding quality level (identical boxes)
    mot17_style: bool  # 9 columns with MOT17 class ids; else MOT15 (10 columns, world coordinates)


#: The benchmark's sets: (source folder under --gt-root or "synthetic", sequences or None for all,
#: frame step (subsampling), description).
SETS: Mapping[str, tuple[str, tuple[str, ...] | None, int | None, str]] = {
    "MOT17": ("MOT17-train", None, 1, "street crowds, 14-30 fps, static and moving cameras"),
    "MOT17@10fps": ("MOT17-train", None, None, "MOT17 subsampled to about 10 fps (every 3rd frame at 30)"),
    "MOT15-driving": (
        "MOT15-train",
        ("ETH-Bahnhof", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-13", "KITTI-17"),
        1,
        "cameras on a car (KITTI, 10 fps) and a stroller (ETH, 14 fps)",
    ),
    "MOT15-static": (
        "MOT15-train",
        ("ADL-Rundle-6", "ADL-Rundle-8", "PETS09-S2L1", "TUD-Campus", "TUD-Stadtmitte", "Venice-2"),
        1,
        "the other MOT15 sequences (7-30 fps)",
    ),
    "DRONE-synth": ("synthetic", None, 1, "55 small objects (16-48 px), drifting and shaking camera, 30 fps"),
}
DEFAULT_SETS = tuple(SETS)
TARGET_FPS = 10.0


def _read_seqinfo(seq_dir: Path) -> dict[str, str]:
    return read_seqinfo(seq_dir / "seqinfo.ini")  # the package's one reader (lower-case keys)


def _is_mot15_style(gt_file: Path) -> bool:
    """10 columns ``frame,id,x,y,w,h,flag,x3d,y3d,z3d`` (MOT15) rather than MOT16/17's 9 with class ids.

    Only picks the scoring protocol (MOT17 pedestrian preprocessing needs class ids); the files themselves
    are read by ``load_mot_gt`` and ``evaluate``, which know both layouts.
    """
    with open(gt_file) as fh:
        first = fh.readline()
    return len(first.split(",")) == 10


def _derive_gt(
    seq_dir: Path, info: Mapping[str, str], length: int, step: int, tmp: Path, tag: str
) -> tuple[Path, int, float]:
    """The sequence folder to evaluate against: the original, or a temporary copy cut or subsampled.

    The copy (outside the repository, deleted at exit) keeps frames ``1, 1 + step, …`` up to ``length``,
    renumbered ``1, 2, …``, with ``frameRate / step`` and the new ``seqLength``.

    Returns:
        ``(folder, frames, frame rate)``.
    """
    fps = float(info["framerate"])
    if length == int(info["seqlength"]) and step == 1:
        return seq_dir, length, fps
    out_lines = []
    for line in (seq_dir / "gt" / "gt.txt").read_text().splitlines():
        if not line.strip():
            continue
        frame, rest = line.split(",", 1)
        f = int(float(frame))
        if f <= length and (f - 1) % step == 0:
            out_lines.append(f"{(f - 1) // step + 1},{rest}")
    new_len = (length - 1) // step + 1
    out = tmp / "gt" / tag / seq_dir.name
    (out / "gt").mkdir(parents=True)
    (out / "gt" / "gt.txt").write_text("".join(line + "\n" for line in out_lines))
    ini = configparser.ConfigParser()
    ini["Sequence"] = {**info, "seqlength": str(new_len), "framerate": f"{fps / step:g}"}
    with open(out / "seqinfo.ini", "w") as fh:
        ini.write(fh)
    return out, new_len, fps / step


def _simulate_all(
    gt: Mapping[int, GtFrame],
    seed_key: Sequence[int],
    qualities: Sequence[str],
    extent: tuple[float, float, float, float],
) -> dict[str, dict[int, SimFrame]]:
    """Detections of one sequence at every embedding quality level: same seed, so identical boxes."""
    out = {}
    for q in qualities:
        cfg = DetSimConfig.hostile(EMB_DIM, **EMB_QUALITIES[q])
        out[q] = simulate_detections(gt, np.random.default_rng(list(seed_key)), cfg, scene_extent=extent)
    return out


def load_dataset(
    dataset_dir: Path,
    tmp: Path,
    seed: int,
    qualities: Sequence[str] = (DEFAULT_QUALITY,),
    names: Sequence[str] | None = None,
    step: int | None = 1,
    max_seqs: int | None = None,
    max_frames: int | None = None,
    tag: str | None = None,
) -> list[SeqData]:
    """Read the sequences of a MOTChallenge folder and simulate their detections (seeded per sequence).

    Only evaluated ground truth makes detections: ``flag == 1`` and class 1 (pedestrian) in MOT17;
    every ``flag == 1`` row in MOT15 (no classes there). False positives fall inside the image.

    Args:
        dataset_dir: folder of sequence folders.
        tmp: where derived ground truth goes.
        seed: detsim seed (mixed with the sequence name).
        qualities: embedding quality levels (:data:`EMB_QUALITIES`) to simulate.
        names: the sequences to use (default: all).
        step: keep every ``step``-th frame; ``None``: ``round(fps / 10)`` (about 10 fps).
        max_seqs, max_frames: smoke-run limits.
        tag: folder name for derived copies.
    """
    seq_dirs = sorted(p for p in dataset_dir.iterdir() if (p / "gt" / "gt.txt").is_file())
    if names is not None:
        seq_dirs = [p for p in seq_dirs if p.name in names]
    if not seq_dirs:
        raise FileNotFoundError(f"no <seq>/gt/gt.txt under {dataset_dir}")
    out = []
    for seq_dir in seq_dirs[:max_seqs]:
        info = _read_seqinfo(seq_dir)
        length = int(info["seqlength"])
        length = min(length, max_frames) if max_frames else length
        seq_step = step if step is not None else max(1, round(float(info["framerate"]) / TARGET_FPS))
        gt_dir, n_frames, fps = _derive_gt(
            seq_dir, info, length, seq_step, tmp, tag or f"{dataset_dir.name}-s{seq_step}"
        )
        gt = load_mot_gt(gt_dir / "gt" / "gt.txt", eval_only=True, classes=(1,), num_frames=n_frames)
        gt = {f: v for f, v in gt.items() if f <= n_frames}
        extent = (0.0, 0.0, float(info["imwidth"]), float(info["imheight"]))
        key = (seed, zlib.crc32(seq_dir.name.encode()), seq_step)
        dets = _simulate_all(gt, key, qualities, extent)
        mot17_style = not _is_mot15_style(seq_dir / "gt" / "gt.txt")
        out.append(SeqData(seq_dir.name, gt_dir, fps, n_frames, dets, mot17_style))
    return out


def synthetic_dataset(
    tmp: Path,
    seed: int,
    qualities: Sequence[str] = (DEFAULT_QUALITY,),
    n_seqs: int = 3,
    frames: int = 300,
    objects: int = 55,
) -> list[SeqData]:
    """The drone-like set: many small objects, slow, seen by a shaking camera (ground truth in ``tmp``)."""
    out = []
    for i in range(n_seqs):
        rng = np.random.default_rng([seed, 7_000 + i])
        gt = synthetic_scene(objects, frames, rng, height=(16.0, 48.0), speed_std=1.0, camera_std=0.7)
        name = f"DRONE-{i + 1:02d}"
        seq = tmp / "gt" / "synthetic" / name
        (seq / "gt").mkdir(parents=True)
        lines = []
        for f, (boxes, ids, _, _) in gt.items():
            for (x1, y1, x2, y2), tid in zip(boxes.tolist(), ids.tolist(), strict=True):
                lines.append(f"{f},{tid},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,1,1")
        (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
        w, h = SCENE_SIZE
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nframeRate=30\nseqLength={frames}\nimWidth={w:.0f}\nimHeight={h:.0f}\n"
        )
        extent = (0.0, 0.0, w, h)
        dets = _simulate_all(gt, (seed, 7_000 + i, 1), qualities, extent)
        out.append(SeqData(name, seq, 30.0, frames, dets, True))
    return out


@dataclass
class QualityResult:
    """One set: TrackEval metrics (combined and per sequence) and frames/s (every repeat) per tracker."""

    dataset: str
    sequences: list[str]
    frames: int
    dets_per_frame: float
    mot17_preproc: bool
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    per_sequence: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    fps: dict[str, list[float]] = field(default_factory=dict)  # frames per CPU second
    wall_fps: dict[str, list[float]] = field(default_factory=dict)

    def median_fps(self, key: str, wall: bool = False) -> float:
        return statistics.median((self.wall_fps if wall else self.fps)[key])

    def speedup(self, key: str, wall: bool = False, ref: str = SPEED_REF) -> float:
        """Median over repeats of ``fps(key) / fps(ref)`` within the same repeat."""
        fps = self.wall_fps if wall else self.fps
        return _paired_ratio(fps[key], fps[ref]) if ref in fps else float("nan")


def measure_quality(
    dataset: str,
    seqs: Sequence[SeqData],
    tmp: Path,
    repeats: int,
    runners: Mapping[str, _Runner] | None = None,
) -> QualityResult:
    """Track every sequence with every tracker, score per set with TrackEval, time ``update()``.

    MOT17-style ground truth (class ids in column 8) is scored with the official MOT17 pedestrian
    protocol (``mot17_preproc=True``); MOT15 class-agnostically. Results of the first repeat are scored
    (tracking is deterministic); frames/s is over the whole set, per repeat.
    """
    runners = runners if runners is not None else make_runners()
    mot17_preproc = all(s.mot17_style for s in seqs)
    frames = sum(s.length for s in seqs)
    n_dets = sum(len(d[1]) for s in seqs for d in s.detections[DEFAULT_QUALITY].values())
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
        k: [[(f, r.prepare(d)) for f, d in s.detections[r.quality or DEFAULT_QUALITY].items()] for s in seqs]
        for k, r in runners.items()
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
            res.fps[key].append(frames / max(cpu[key], 1e-9))
            res.wall_fps[key].append(frames / max(wall[key], 1e-9))
    for key in runners:
        report = evaluate(
            [s.gt_dir for s in seqs], tmp / "results" / dataset / key, mot17_preproc=mot17_preproc
        )
        res.metrics[key] = dict(report.combined)
        res.per_sequence[key] = {n: dict(m) for n, m in report.per_sequence.items()}
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
    try:
        info["load average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        pass
    for pkg in ("numpy", "scipy", "lap", "trackers", "supervision", "trackeval"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    return info


def latency_table(results: Sequence[LatencyResult], wall: bool = False) -> str:
    """Markdown table: median ms/frame per tracker and our speed-up over ByteTrack (paired fps ratio).

    Args:
        results: from :func:`measure_latency`.
        wall: wall-clock instead of CPU time.
    """
    keys = [k for k in TRACKER_KEYS if k in results[0].ms_per_frame]
    head = ["objects", "dets/frame", *(f"{TRACKER_LABELS[k]} ms" for k in keys)]
    ours = [k for k in keys if k.startswith("ours")]
    head += [f"{TRACKER_LABELS[k].removeprefix('ibntrack, ')} vs ByteTrack" for k in ours]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in results:
        cells = [str(r.n_objects), f"{r.dets_per_frame:.1f}"]
        cells += [f"{r.median_ms(k, wall):.2f}" for k in keys]
        cells += [f"{r.speedup(k, wall):.2f}×" for k in ours]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quality_table(res: QualityResult) -> str:
    """Markdown table: combined TrackEval metrics, median frames/s (CPU) per tracker, best peer marked."""
    keys = [k for k in TRACKER_KEYS if k in res.metrics]
    head = ["tracker", *QUALITY_METRICS, "fps", "fps vs ByteTrack"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key in keys:
        m = res.metrics[key]
        cells = [TRACKER_LABELS[key]]
        for name in QUALITY_METRICS:
            cells.append(str(int(m[name])) if name == "IDSW" else f"{100 * m[name]:.1f}")
        cells += [f"{res.median_fps(key):.0f}", f"{res.speedup(key):.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(quality: Sequence[QualityResult]) -> str:
    """Per set: best peer HOTA / IDSW, ours at every embedding level and without, margins."""
    lines = [
        "| set | best peer HOTA (IDSW) | ours no-emb | "
        + " | ".join(f"ours emb {q}" for q in EMB_QUALITIES)
        + " | worst emb − no-emb | worst emb − best peer |",
        "|---|---|---:|" + "---:|" * len(EMB_QUALITIES) + "---:|---:|",
    ]
    for res in quality:
        m = res.metrics
        peers = [k for k in PEER_KEYS if k in m]
        emb_keys = [("ours_emb" if q == DEFAULT_QUALITY else f"ours_emb_{q}") for q in EMB_QUALITIES]
        if not peers or "ours_iou" not in m:
            continue
        best = max(peers, key=lambda k: m[k]["HOTA"])
        cells = [res.dataset, f"{100 * m[best]['HOTA']:.1f} ({int(m[best]['IDSW'])}, {best})"]
        cells.append(f"{100 * m['ours_iou']['HOTA']:.1f} ({int(m['ours_iou']['IDSW'])})")
        worst = None
        for k in emb_keys:
            if k in m:
                cells.append(f"{100 * m[k]['HOTA']:.1f} ({int(m[k]['IDSW'])})")
                worst = m[k]["HOTA"] if worst is None else min(worst, m[k]["HOTA"])
            else:
                cells.append("–")
        if worst is None:
            cells += ["–", "–"]
        else:
            cells += [
                f"{100 * (worst - m['ours_iou']['HOTA']):+.1f}",
                f"{100 * (worst - m[best]['HOTA']):+.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_sequence_table(res: QualityResult, metric: str = "HOTA") -> str:
    """Markdown table: ``metric`` per sequence (rows) and tracker (columns)."""
    keys = [k for k in TRACKER_KEYS if k in res.per_sequence]
    head = ["sequence", *(k for k in keys)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(keys)]
    for name in res.sequences:
        cells = [name]
        for k in keys:
            v = res.per_sequence[k].get(name, {}).get(metric, float("nan"))
            cells.append(str(int(v)) if metric == "IDSW" else f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_plot(results: Sequence[LatencyResult], path: Path) -> None:
    """Median ms/frame against object count, one line per tracker (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    sizes = [r.n_objects for r in results]
    for key in [k for k in TRACKER_KEYS if k in results[0].ms_per_frame]:
        style = "o-" if key.startswith("ours") else "^--"
        ax.plot(sizes, [r.median_ms(key) for r in results], style, label=TRACKER_LABELS[key])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("objects in the scene")
    ax.set_ylabel("update() CPU time (ms/frame, median)")
    ax.set_title("Association latency on identical detections (1 thread)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _settings_text(args: argparse.Namespace, sizes: Sequence[int], lat_frames: int) -> str:
    ours = TrackerConfig()
    hostile = DetSimConfig.hostile(EMB_DIM)
    changed = {
        f.name: getattr(hostile, f.name)
        for f in dataclasses.fields(DetSimConfig)
        if getattr(hostile, f.name) != getattr(DetSimConfig(), f.name)
    }
    return "\n".join(
        [
            f"latency: sizes {list(sizes)}, {lat_frames} frames, {args.repeats} repeats (median), "
            f"frame_rate 30, scene {SCENE_SIZE[0]:.0f}x{SCENE_SIZE[1]:.0f}",
            f"quality: {args.quality_repeats} timing repeats (median), detsim seed {args.seed}, "
            f"emb_dim {EMB_DIM}, frame_rate from seqinfo.ini",
            "detections: DetSimConfig.hostile(): " + ", ".join(f"{k} {v}" for k, v in changed.items()),
            "embedding levels: " + "; ".join(f"{q}: {v or 'as hostile()'}" for q, v in EMB_QUALITIES.items()),
            f"ours: TrackerConfig() defaults: {ours}",
            "peers: " + "; ".join(f"{PEERS[k][0]}({PEERS[k][1] or 'defaults'})" for k in PEER_KEYS),
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
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 sizes, 1 sequence per set, 50 frames"
    )
    parser.add_argument("--repeats", type=int, default=None, help="latency repeats (default 7, quick 2)")
    parser.add_argument(
        "--quality-repeats",
        type=int,
        default=None,
        help="timing repeats on real sequences (default 1, quick 1)",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="frames per latency run (default 200, quick 30)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of scenes and simulated detections")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help=f"comma list of {list(SETS)}")
    parser.add_argument(
        "--trackers", default=",".join(TRACKER_KEYS), help=f"comma list of {list(TRACKER_KEYS)}"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="latency plot (PNG); default docs/img/association_latency.png, none with --quick",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers as JSON here")
    parser.add_argument("--skip-quality", action="store_true", help="latency part only")
    parser.add_argument("--skip-latency", action="store_true", help="quality part only")
    parser.add_argument("--per-sequence", action="store_true", help="also print per-sequence HOTA and IDSW")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 7)
    args.quality_repeats = args.quality_repeats or 1
    lat_frames = args.frames or (30 if args.quick else 200)
    sizes = QUICK_SIZES if args.quick else SIZES
    plot = args.plot if args.plot is not None else (None if args.quick else DEFAULT_PLOT)
    sets = [s for s in args.sets.split(",") if s]
    keys = [k for k in args.trackers.split(",") if k]
    for name in sets:
        if name not in SETS:
            parser.error(f"--sets: unknown set {name!r}; known: {', '.join(SETS)}")
    for key in keys:
        if key not in TRACKER_LABELS:
            parser.error(f"--trackers: unknown tracker {key!r}; known: {', '.join(TRACKER_LABELS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    started = time.perf_counter()
    info = machine_info()
    print("## Machine\n\n" + ", ".join(f"{k}: {v}" for k, v in info.items()) + "\n")
    print("## Settings\n\n" + _settings_text(args, sizes, lat_frames) + "\n")
    runners = make_runners(keys)

    latency: list[LatencyResult] = []
    if not args.skip_latency:
        lat_keys = [k for k in keys if not k.startswith("ours_emb_")]
        latency = measure_latency(sizes, lat_frames, args.repeats, args.seed, make_runners(lat_keys))
        print("## Association latency (median CPU ms/frame; speed-up = median of paired fps ratios)\n")
        print(latency_table(latency) + "\n")
        print("## Association latency, wall clock (median ms/frame)\n")
        print(latency_table(latency, wall=True) + "\n")
        if plot is not None:
            save_plot(latency, plot)
            print(f"plot: {plot}\n")

    quality: list[QualityResult] = []
    if not args.skip_quality:
        qualities = sorted(
            {r.quality or DEFAULT_QUALITY for r in runners.values()} | {DEFAULT_QUALITY},
            key=list(EMB_QUALITIES).index,
        )
        with tempfile.TemporaryDirectory(prefix="bench-assoc-") as tmp_name:
            tmp = Path(tmp_name)
            for name in sets:
                source, names, step, desc = SETS[name]
                if source == "synthetic":
                    seqs = synthetic_dataset(
                        tmp,
                        args.seed,
                        qualities,
                        n_seqs=1 if args.quick else 3,
                        frames=50 if args.quick else 300,
                    )
                else:
                    seqs = load_dataset(
                        args.gt_root / source,
                        tmp,
                        args.seed,
                        qualities,
                        names=names,
                        step=step,
                        max_seqs=1 if args.quick else None,
                        max_frames=50 if args.quick else None,
                        tag=name,
                    )
                res = measure_quality(name, seqs, tmp, args.quality_repeats, runners)
                quality.append(res)
                protocol = "MOT17 pedestrian protocol" if res.mot17_preproc else "class-agnostic"
                print(
                    f"## Quality: {name} — {desc} ({len(seqs)} seqs, {res.frames} frames, "
                    f"{res.dets_per_frame:.1f} dets/frame, {protocol}; fps = frames per CPU second)\n"
                )
                print(quality_table(res) + "\n")
                if args.per_sequence:
                    print(per_sequence_table(res) + "\n")
                    print(per_sequence_table(res, "IDSW") + "\n")
        if quality:
            print("## Targets (HOTA, IDSW in brackets)\n")
            print(targets_table(quality) + "\n")

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
