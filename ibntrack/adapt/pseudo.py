"""Pseudo-labels from a teacher, refined by what video gives for free.

A teacher's boxes on single frames are noisy: missed people, boxes on bins and shadows. Video helps in
two ways that need no labels:

1. **Background** (static cameras only): the per-pixel median of frames spread over the footage is the
   empty scene; a box with too few pixels that differ from it is a false positive of the teacher. A moving
   camera is detected (the median frame-to-frame shift of tracked corners) and the check is skipped.
2. **Time**: people persist. Boxes are linked into tracklets by the motion-only tracker; tracklets
   shorter than ``min_track`` frames are dropped (one-frame blobs), gaps of up to ``max_gap`` frames are
   filled by linear interpolation. The tracklet ids become the ReID training identities.

:func:`label_footage` runs both over one source and returns MOTChallenge ground-truth rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ibntrack.tracking import MultiObjectTracker
from ibntrack.tracking.interpolate import interpolate_tracks

__all__ = [
    "FootageLabels",
    "PseudoLabelConfig",
    "PseudoLabelError",
    "background_model",
    "camera_is_static",
    "foreground_fraction",
    "label_footage",
    "link_tracklets",
]

log = logging.getLogger(__name__)

Teacher = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class PseudoLabelError(ValueError):
    """The footage cannot give pseudo-labels (too short, nothing confident found)."""


@dataclass(frozen=True)
class PseudoLabelConfig:
    """How teacher boxes become training labels.

    Attributes:
        min_score: teacher boxes below this score are not used at all.
        min_track: a tracklet must hold at least this many teacher boxes to be kept.
        max_gap: gaps of at most this many frames inside a kept tracklet are filled by interpolation.
        fg_min: static camera: a box needs at least this fraction of foreground pixels.
        fg_diff: grey-level difference from the background that counts as foreground.
        background_frames: frames sampled (evenly) for the median background.
        static_shift: median corner shift (pixels per sampled frame pair) below which the camera is static.
        min_frames: footage shorter than this is refused (tracklets need time).
        use_background: ``auto`` (check the camera), ``on`` (trust that it is static) or ``off``.
    """

    min_score: float = 0.5
    min_track: int = 5
    max_gap: int = 5
    fg_min: float = 0.12
    fg_diff: int = 25
    background_frames: int = 50
    static_shift: float = 1.5
    min_frames: int = 20
    use_background: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score < 1.0:
            raise ValueError(f"min_score must be in [0, 1), got {self.min_score}")
        for name in ("min_track", "min_frames", "background_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")
        if self.use_background not in ("auto", "on", "off"):
            raise ValueError(f"use_background must be auto, on or off, got {self.use_background!r}")


@dataclass
class FootageLabels:
    """Pseudo-labels of one source.

    Attributes:
        rows: ``[N, 9]`` MOT ground truth ``frame, id, x, y, w, h, 1, 1, 1`` (xywh pixels, 1-based frames).
        frames: frames seen.
        static: whether the background check was used.
        counts: boxes at each stage: ``teacher``, ``foreground``, ``tracklets`` (after filling gaps).
    """

    rows: np.ndarray
    frames: int
    static: bool
    counts: dict[str, int] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------- background


def camera_is_static(frames: list[np.ndarray], max_shift: float) -> tuple[bool, float]:
    """Whether consecutive sampled frames ``[H, W, 3]`` line up: ``(static, median shift in px)``.

    Corners of each frame are followed into the next by pyramidal Lucas-Kanade; the shift of a pair is the
    median displacement of its corners, and the camera is static when the median over pairs is at most
    ``max_shift`` (people move a minority of the corners, so they do not count).
    """
    shifts: list[float] = []
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        ga, gb = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in (a, b))
        pts = cv2.goodFeaturesToTrack(ga, maxCorners=400, qualityLevel=0.01, minDistance=8)
        if pts is None or len(pts) < 10:
            continue
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(ga, gb, pts, None)  # type: ignore[call-overload]
        ok = status.reshape(-1) == 1
        if ok.sum() < 10:
            shifts.append(float("inf"))  # nothing follows: the view changed
            continue
        shifts.append(float(np.median(np.linalg.norm((nxt - pts).reshape(-1, 2)[ok], axis=1))))
    if not shifts:
        return False, float("nan")
    shift = float(np.median(shifts))
    return shift <= max_shift, shift


def background_model(frames: list[np.ndarray]) -> np.ndarray:
    """The per-pixel median of ``frames`` (``[H, W, 3]`` uint8 each), as ``[H, W]`` uint8 grey."""
    stack = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
    return np.median(stack, axis=0).astype(np.uint8)


def foreground_fraction(
    frame_bgr: np.ndarray, background: np.ndarray, boxes: np.ndarray, diff: int
) -> np.ndarray:
    """Fraction of each box's pixels that differ from the background by more than ``diff`` grey levels.

    Args:
        frame_bgr: ``[H, W, 3]`` uint8.
        background: ``[H, W]`` uint8 grey (:func:`background_model`).
        boxes: ``[N, 4]`` xyxy pixels.

    Returns:
        ``[N]`` float32 in [0, 1] (0 for a box wholly outside the frame).
    """
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    mask: np.ndarray = (cv2.absdiff(grey, background) > diff).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    integral = cv2.integral(mask)  # [H+1, W+1]
    h, w = mask.shape
    out = np.zeros(len(boxes), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        a, b = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
        c, d = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
        if b > a and d > c:
            inside = integral[d, b] - integral[c, b] - integral[d, a] + integral[c, a]
            out[i] = inside / float((b - a) * (d - c))
    return out


# ------------------------------------------------------------------------------------------------ time


def link_tracklets(
    per_frame: Iterable[tuple[int, np.ndarray, np.ndarray]], min_track: int, max_gap: int, frame_rate: float
) -> np.ndarray:
    """Links per-frame boxes into tracklets and keeps the persistent ones.

    Args:
        per_frame: ``(frame_id, boxes [N, 4] xyxy, scores [N])`` in frame order.
        min_track: a tracklet needs at least this many boxes to be kept.
        max_gap: gaps of at most this many frames are filled by linear interpolation.
        frame_rate: frames per second of the footage (scales the tracker's memory).

    Returns:
        ``[M, 9]`` MOT ground-truth rows ``frame, id, x, y, w, h, 1, 1, 1``; ids renumbered 1..K.
    """
    mot = MultiObjectTracker(frame_rate=frame_rate)
    rows = []
    for frame_id, boxes, scores in per_frame:
        for t in mot.update(boxes, scores):
            x1, y1, x2, y2 = (float(v) for v in t.box)
            rows.append((frame_id, t.track_id, x1, y1, x2 - x1, y2 - y1, float(t.score)))
    if not rows:
        return np.zeros((0, 9), np.float64)
    arr = np.asarray(rows, np.float64)
    ids, counts = np.unique(arr[:, 1], return_counts=True)
    arr = arr[np.isin(arr[:, 1], ids[counts >= min_track])]
    if len(arr) == 0:
        return np.zeros((0, 9), np.float64)
    arr = interpolate_tracks(arr, "linear", max_gap=max_gap)
    _, arr[:, 1] = np.unique(arr[:, 1], return_inverse=True)
    arr[:, 1] += 1
    out = np.ones((len(arr), 9), np.float64)
    out[:, :6] = arr[:, :6]
    return out


# ----------------------------------------------------------------------------------------------- driver


def label_footage(
    frames: Iterable[tuple[int, np.ndarray]],
    teacher: Teacher,
    cfg: PseudoLabelConfig,
    frame_rate: float,
    sample: list[np.ndarray],
    name: str = "footage",
    progress: Callable[[int], object] | None = None,
) -> FootageLabels:
    """Pseudo-labels for one source.

    Args:
        frames: ``(frame_id, [H, W, 3] uint8 BGR)`` in order.
        teacher: ``frame -> (boxes [N, 4] xyxy, scores [N])``.
        cfg: the thresholds.
        frame_rate: frames per second.
        sample: frames spread over the footage (for the camera check and the background).
        name: the source's name, for messages.
        progress: called with 1 after each frame.

    Raises:
        PseudoLabelError: footage shorter than ``cfg.min_frames``, or no tracklet survives.
    """
    static = False
    background = None
    if cfg.use_background != "off" and len(sample) >= 3:
        if cfg.use_background == "on":
            static = True
        else:
            static, shift = camera_is_static(sample, cfg.static_shift)
            if not static:
                log.warning(
                    "%s: the camera moves (median shift %.1f px between sampled frames > %.1f): "
                    "background subtraction is off, only the teacher and time filter the labels",
                    name,
                    shift,
                    cfg.static_shift,
                )
        if static:
            background = background_model(sample)
    counts = {"teacher": 0, "foreground": 0}
    seen = 0

    def detections() -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
        nonlocal seen
        for frame_id, frame in frames:
            seen += 1
            boxes, scores = teacher(frame)
            keep = scores >= cfg.min_score
            boxes, scores = boxes[keep], scores[keep]
            counts["teacher"] += len(boxes)
            if background is not None and len(boxes):
                fg = foreground_fraction(frame, background, boxes, cfg.fg_diff)
                boxes, scores = boxes[fg >= cfg.fg_min], scores[fg >= cfg.fg_min]
            counts["foreground"] += len(boxes)
            if progress is not None:
                progress(1)
            yield frame_id, boxes, scores

    rows = link_tracklets(detections(), cfg.min_track, cfg.max_gap, frame_rate)
    if seen < cfg.min_frames:
        raise PseudoLabelError(
            f"{name}: {seen} frames; self-training needs at least {cfg.min_frames} frames of footage "
            "(tracklets are what filter the teacher's mistakes)"
        )
    counts["tracklets"] = len(rows)
    if len(rows) == 0:
        raise PseudoLabelError(
            f"{name}: no confident pseudo-labels: the teacher found {counts['teacher']} boxes, "
            f"{counts['foreground']} on moving foreground, none forming a tracklet of {cfg.min_track}+ "
            "frames (people too small or too few for the teacher?)"
        )
    return FootageLabels(rows=rows, frames=seen, static=static, counts=counts)
