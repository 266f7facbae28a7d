"""Self-training of the one-shot network on a user's own unlabeled footage (``ibntrack adapt``).

Round 0: a packaged real teacher (:mod:`ibntrack.adapt.teacher`) labels every frame, the labels are
filtered by background and time (:mod:`ibntrack.adapt.pseudo`) and written as MOTChallenge sequences
(frames + ``gt/gt.txt``, tracklet ids as identities); the network is fine-tuned on them from the given
checkpoint (detection + embeddings, the normal training loop). Round r > 0: the student of round r−1
tracks the footage, its confident tracks (:func:`student_labels`) are the next labels, and the network is
fine-tuned again from the same starting checkpoint.

Everything is on disk under ``OUT`` and each stage is skipped when its result is already there, so an
interrupted run resumes where it stopped::

    OUT/round0/labels/<source>/{img1/, gt/gt.txt, seqinfo.ini}
    OUT/round0/train/{last.pt, best.pt, train_log.jsonl}
    OUT/adapted.pt                       the final checkpoint, with the footage it adapted to
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ibntrack.adapt.pseudo import FootageLabels, PseudoLabelConfig, Teacher, label_footage, link_tracklets
from ibntrack.adapt.teacher import make_teacher
from ibntrack.config import load_config
from ibntrack.data.motio import read_gt, read_seqinfo, write_gt, write_seqinfo
from ibntrack.fileio import atomic_write_text, check_writable_dir
from ibntrack.nn.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["AdaptConfig", "adapt", "finetune_config", "label_source", "student_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptConfig:
    """One self-training run.

    Attributes:
        teacher: registered teacher name (``hog`` or ``cascade``).
        rounds: 1 = teacher labels only; each extra round re-labels the footage with the last student.
        steps: optimizer steps of each fine-tuning round.
        batch_size: frames per step.
        lr: peak learning rate (cosine schedule with warm-up).
        input_size: network input ``(H, W)``; ``None`` = 384 wide with the footage's aspect
            (multiples of 32).
        seed: seed of the fine-tuning.
        precision: training number format (``auto`` = bf16 where the CPU has it).
        scene: keywords describing the footage, merged into the checkpoint's training scene.
        max_frames: use at most this many frames of each source (0 = all).
        student_score: round r > 0: lowest student track score kept as a label.
        labels: the pseudo-label thresholds.
    """

    teacher: str = "hog"
    rounds: int = 1
    steps: int = 600
    batch_size: int = 8
    lr: float = 2e-4
    input_size: tuple[int, int] | None = None
    seed: int = 0
    precision: str = "auto"
    scene: tuple[str, ...] = ()
    max_frames: int = 0
    student_score: float = 0.5
    labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


# --------------------------------------------------------------------------------------------- labelling


def _write_sequence(
    seq_dir: Path,
    frames: Sequence[tuple[int, np.ndarray]],
    fps: float,
    rows: np.ndarray,
    scene: Sequence[str],
    class_names: Sequence[str],
) -> None:
    """Frames as ``img1/%06d.jpg`` and ``rows`` as ``gt/gt.txt``; ``gt.txt`` is written last (the marker)."""
    img_dir = seq_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    for frame_id, frame in frames:
        path = img_dir / f"{frame_id:06d}.jpg"
        if not path.exists():
            tmp = img_dir / f".{frame_id:06d}.tmp.jpg"
            if not cv2.imwrite(str(tmp), frame, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f"{tmp}: could not write the frame")
            os.replace(tmp, path)
    h, w = frames[0][1].shape[:2]
    write_seqinfo(seq_dir, seq_dir.name, fps, len(frames), w, h, ".jpg", scene, class_names)
    write_gt(seq_dir / "gt" / "gt.txt", rows)


def _read_frames(source: Any, max_frames: int) -> list[tuple[int, np.ndarray]]:
    frames = []
    for frame_id, frame in source:
        frames.append((frame_id, frame))
        if max_frames and len(frames) >= max_frames:
            break
    return frames


def _sample(frames: Sequence[tuple[int, np.ndarray]], n: int) -> list[np.ndarray]:
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int))
    return [frames[i][1] for i in idx]


def label_source(
    source: Any, seq_dir: Path, teacher: Any, cfg: AdaptConfig, class_names: Sequence[str]
) -> FootageLabels | None:
    """Round-0 labels of one source (a :class:`~ibntrack.engine.sources.FrameSource`) into ``seq_dir``.

    Returns ``None`` when ``seq_dir`` already holds them (resume).
    """
    if (seq_dir / "gt" / "gt.txt").is_file():
        log.info("%s: pseudo-labels already in %s", source.name, seq_dir)
        return None
    from tqdm import tqdm

    frames = _read_frames(source, cfg.max_frames)
    with tqdm(total=len(frames), desc=f"teacher {source.name}", unit="frame", disable=None) as bar:
        labels = label_footage(
            iter(frames),
            teacher,
            cfg.labels,
            source.frame_rate,
            _sample(frames, cfg.labels.background_frames),
            name=source.name,
            progress=bar.update,
        )
    _write_sequence(seq_dir, frames, source.frame_rate, labels.rows, cfg.scene, class_names)
    log.info(
        "%s: %d frames, camera %s; teacher boxes %d -> on foreground %d -> in tracklets %d (%d identities)",
        source.name,
        labels.frames,
        "static" if labels.static else "moving/unknown",
        labels.counts["teacher"],
        labels.counts["foreground"],
        labels.counts["tracklets"],
        len(np.unique(labels.rows[:, 1])),
    )
    return labels


def student_labels(seq_dir: Path, weights: Path, cfg: AdaptConfig, out_dir: Path) -> None:
    """Re-labels the sequence ``seq_dir`` with the student ``weights`` into ``out_dir/gt/gt.txt``.

    The labels of ``seq_dir`` (the teacher's) are kept, and the student's confident boxes (track score
    >= ``cfg.student_score``) that overlap none of them (IoU < 0.3) are added: people the teacher missed
    and the student found. The union is linked and filtered by time like the teacher's labels. Frames are
    linked, not copied.
    """
    if (out_dir / "gt" / "gt.txt").is_file():
        return
    from ibntrack.engine.infer import Tracker
    from ibntrack.engine.sources import open_sources
    from ibntrack.tracking.matching import iou_distance

    source = open_sources(seq_dir)[0]
    tracker = Tracker.from_checkpoint(str(weights), precision=cfg.precision)
    previous = read_gt(seq_dir / "gt" / "gt.txt")

    def detections():
        for frame_id, frame in source:
            tracks = tracker.update(frame)
            boxes = np.asarray([t.box for t in tracks], np.float32).reshape(-1, 4)
            scores = np.asarray([t.score for t in tracks], np.float32)
            keep = scores >= cfg.student_score
            boxes, scores = boxes[keep], scores[keep]
            rows = previous[previous[:, 0] == frame_id]
            known = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], 1).astype(np.float32)
            if len(known) and len(boxes):
                new = (1.0 - iou_distance(boxes, known)).max(axis=1) < 0.3
                boxes, scores = boxes[new], scores[new]
            yield (
                frame_id,
                np.concatenate([known, boxes]),
                np.concatenate([np.ones(len(known), np.float32), scores]),
            )

    rows = link_tracklets(detections(), cfg.labels.min_track, cfg.labels.max_gap, source.frame_rate)
    (out_dir / "gt").mkdir(parents=True, exist_ok=True)
    img = out_dir / "img1"
    if not img.exists():
        img.symlink_to((seq_dir / "img1").resolve(), target_is_directory=True)
    shutil.copyfile(seq_dir / "seqinfo.ini", out_dir / "seqinfo.ini")
    write_gt(out_dir / "gt" / "gt.txt", rows)


# -------------------------------------------------------------------------------------------- training


def _default_input_size(width: int, height: int, target_w: int = 384) -> tuple[int, int]:
    """``(H, W)`` multiples of 32, ``W = target_w``, keeping the footage's aspect."""
    h = max(32, int(round(target_w * height / width / 32.0)) * 32)
    return h, target_w


def finetune_config(
    weights: Path,
    labels_root: Path,
    out_dir: Path,
    cfg: AdaptConfig,
    input_size: tuple[int, int],
    frames: int,
) -> Any:
    """The training :class:`~ibntrack.config.Config` of one fine-tuning round.

    The network, loss and classes are the starting checkpoint's; data, schedule and output are the
    round's. Written to ``out_dir/adapt_config.yaml`` first so the run can be repeated with
    ``ibntrack train --config``.
    """
    ckpt = load_checkpoint(weights)
    base = dict(ckpt.get("config") or {})
    if not base:  # a checkpoint written outside `ibntrack train` (imported, exported): its network only
        if "model_config" not in ckpt:
            raise ValueError(f"{weights}: not an ibntrack checkpoint (no model_config)")
        names = list(ckpt.get("class_names") or ["pedestrian"])
        base = {
            "model": dict(ckpt["model_config"]),
            "data": {"num_classes": len(names), "class_names": names},
        }
    steps_per_epoch = max(1, frames // cfg.batch_size)
    epochs = max(1, -(-cfg.steps // steps_per_epoch))
    base["data"] = {
        **base.get("data", {}),
        "train": [str(labels_root)],
        "train_weights": [],
        "val": [],
        "input_size": list(input_size),
        "workers": 0,
        "frame_step": 1,
        "min_visibility": 0.0,
    }
    base["train"] = {
        **base.get("train", {}),
        "epochs": epochs,
        "max_steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "schedule": "cosine",
        "warmup_iters": min(50, cfg.steps // 10),
        "min_lr_ratio": 0.05,
        "precision": cfg.precision,
        "amp": True,
        "seed": cfg.seed,
        "out_dir": str(out_dir),
        "device": "cpu",
        "val_every": 0,
        "save_every": 50,
        "finetune": str(weights),
        "resume": str(out_dir / "last.pt") if (out_dir / "last.pt").is_file() else None,
        "train_scene": sorted(set(ckpt.get("train_scene") or []) | set(cfg.scene) | {"real"}),
    }
    base.setdefault("model", {})["pretrained"] = None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "adapt_config.yaml"
    atomic_write_text(path, yaml.safe_dump(base, sort_keys=False))
    return load_config(path)


# ----------------------------------------------------------------------------------------------- driver


def adapt(
    sources: Sequence[str],
    weights: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: AdaptConfig | None = None,
    teacher: Teacher | None = None,
) -> Path:
    """Self-trains ``weights`` on the footage ``sources``; returns the path of ``OUT/adapted.pt``.

    Args:
        sources: videos, image folders or MOT sequences (anything ``ibntrack track`` reads, but cameras).
        weights: the checkpoint to start from (e.g. the shipped model).
        out_dir: the run folder (resumable: finished stages are reused).
        cfg: the run's settings (defaults: :class:`AdaptConfig`).
        teacher: your own detector ``frame [H, W, 3] uint8 BGR -> (boxes [N, 4] xyxy, scores [N])``
            instead of the packaged ``cfg.teacher``.

    Raises:
        TeacherError: no packaged teacher is usable. PseudoLabelError: footage too short or nothing
        confident. ValueError / FileNotFoundError: bad sources, weights or output folder.
    """
    from ibntrack.engine.sources import open_sources
    from ibntrack.training.train import fit

    cfg = cfg or AdaptConfig()
    out = check_writable_dir(Path(out_dir), "--out")
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such checkpoint")
    ckpt = load_checkpoint(weights)
    class_names = list(ckpt.get("class_names") or ["pedestrian"])
    opened = [s for spec in sources for s in open_sources(spec)]
    live = [s.spec for s in opened if s.kind in ("camera", "stream")]
    if live:
        raise ValueError(f"cannot self-train on live streams ({', '.join(live)}); record the footage first")
    names = [s.name for s in opened]
    if len(set(names)) != len(names):
        raise ValueError(f"two sources share a name ({sorted(names)}); give each a distinct file name")
    teacher = teacher or make_teacher(cfg.teacher)

    labels_root = out / "round0" / "labels"
    size: tuple[int, int] | None = cfg.input_size
    frames_total, footage = 0, []
    for source in opened:
        seq_dir = labels_root / source.name
        label_source(source, seq_dir, teacher, cfg, class_names)
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        w, h, n = int(info["imwidth"]), int(info["imheight"]), int(info["seqlength"])
        size = size or _default_input_size(w, h)
        frames_total += n
        footage.append({"name": source.name, "spec": str(source.spec), "frames": n, "size": [w, h]})
    assert size is not None

    student = weights
    for r in range(cfg.rounds):
        root = out / f"round{r}" / "labels"
        if r > 0:
            for source in opened:
                student_labels(labels_root / source.name, student, cfg, root / source.name)
        log.info("round %d: fine-tuning %s on %s (%d steps)", r, weights, root, cfg.steps)
        train_dir = out / f"round{r}" / "train"
        if (train_dir / "done").is_file():
            student = train_dir / "last.pt"
            continue
        fit(finetune_config(weights, root, train_dir, cfg, size, frames_total))
        atomic_write_text(train_dir / "done", "")
        student = train_dir / "last.pt"

    final = load_checkpoint(student)
    for key in ("optimizer", "scheduler", "scaler", "rng", "epoch_sums"):
        final.pop(key, None)
    final["adapted_to"] = {
        "footage": footage,
        "teacher": cfg.teacher,
        "rounds": cfg.rounds,
        "steps": cfg.steps,
        "started_from": str(weights),
    }
    return save_checkpoint(out / "adapted.pt", final)
