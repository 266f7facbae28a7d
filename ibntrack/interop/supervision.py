"""``supervision.Detections`` in and out of ibntrack (optional extra: ``pip install ibntrack[supervision]``).

* :func:`update_with_detections` — what ``MultiObjectTracker.update_with_detections`` runs: one frame of
  ``sv.Detections`` (``xyxy``, ``confidence``, ``class_id``, and an appearance embedding from
  ``detections.data["embedding"]`` when present) through the tracker; returns the input detections that
  belong to a confirmed track this frame, with ``tracker_id`` filled (the convention of roboflow
  ``trackers``: boxes, ``data`` and ``metadata`` are the input's, not the Kalman estimate).
* :func:`tracks_to_detections` — the same pairing for :meth:`ibntrack.Tracker.update` with
  ``as_detections=True`` (network detections → ``sv.Detections``; the embedding goes to ``data``).
* :func:`read_result_detections` — a MOTChallenge result file written by ``ibntrack track`` as one
  ``sv.Detections`` per frame, e.g. for ``sv.LineZone`` counting.

Pairing a returned track with its detection. The tracker returns only confirmed tracks matched (or
started) in this frame; each was corrected with exactly one detection of the frame and stores that
detection's score (the same float32 value) and class. The pairing is one assignment (all tracks paired)
that prefers equal score, then equal class, then the highest IoU between the track's box (the Kalman
estimate after the correction) and the detection box. Two detections can be confused only when they have
the same score and class and the IoU order is wrong, which the Kalman correction (always between the
prediction and the detection) makes unlikely.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import supervision as sv

    from ibntrack.structures import Detections
    from ibntrack.tracking.track import Track
    from ibntrack.tracking.tracker import MultiObjectTracker

__all__ = [
    "EMBEDDING_KEY",
    "import_supervision",
    "pair_tracks",
    "read_result_detections",
    "tracks_to_detections",
    "update_with_detections",
]

#: ``sv.Detections.data`` key read (``update_with_detections``) and written (``tracks_to_detections``).
EMBEDDING_KEY = "embedding"


def import_supervision() -> Any:
    """The ``supervision`` module, or an ``ImportError`` saying how to install it."""
    try:
        import supervision
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "supervision interop needs the 'supervision' package: pip install 'ibntrack[supervision]'"
        ) from exc
    return supervision


def pair_tracks(
    tracks: Sequence[Track], boxes_xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Index of the detection each track of this frame was updated with (see the module docstring).

    Args:
        tracks: the tracks returned by ``MultiObjectTracker.update`` for this frame.
        boxes_xyxy: ``[N, 4]`` the frame's detection boxes, xyxy pixels (as given to ``update``).
        scores: ``[N]`` their confidences.
        classes: ``[N]`` their 0-based classes.

    Returns:
        int64 ``[len(tracks)]`` detection indices (distinct).

    Raises:
        RuntimeError: a track has neither a detection of equal score nor an overlapping one (the tracks
            are not this frame's), or there are more tracks than detections.
    """
    from ibntrack.ops.boxes import box_iou
    from ibntrack.tracking.matching import linear_assignment

    n_t = len(tracks)
    if n_t == 0:
        return np.zeros(0, np.int64)
    det_scores = np.asarray(scores, np.float32).reshape(-1)
    det_classes = np.asarray(classes, np.int64).reshape(-1)
    det_boxes = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    if det_boxes.shape[0] < n_t:
        raise RuntimeError(f"{n_t} tracks but {det_boxes.shape[0]} detections: not the same update() call")
    import torch

    t_scores = np.array([t.score for t in tracks], np.float32)
    t_classes = np.array([t.cls for t in tracks], np.int64)
    t_boxes = np.stack([t.box for t in tracks]).astype(np.float32)
    iou = box_iou(torch.from_numpy(t_boxes), torch.from_numpy(det_boxes)).numpy().astype(np.float64)
    same_score = t_scores[:, None] == det_scores[None, :]
    same_class = t_classes[:, None] == det_classes[None, :]
    # equal score and class first (each costs 2 when it differs), then IoU; preferences, not rules, so
    # a tracker that smooths scores or (per_class=False) lets a track take another class still pairs
    cost = (1.0 - iou) + 2.0 * ~same_score + 2.0 * ~same_class
    matches, _, _ = linear_assignment(cost, 10.0 * n_t + 10.0)  # unpaired costs more than any pairing
    out = np.empty(n_t, np.int64)
    out[matches[:, 0]] = matches[:, 1]
    rows = np.arange(n_t)
    plausible = same_score[rows, out] | (iou[rows, out] > 0)
    if not plausible.all():
        bad = tracks[int(np.flatnonzero(~plausible)[0])]
        raise RuntimeError(
            f"track {bad.track_id} (score {bad.score:.4f}) has no detection of this frame with its score or "
            "overlapping its box; pass the detections given to the same update() call"
        )
    return out


def update_with_detections(
    tracker: MultiObjectTracker, detections: sv.Detections, embedding_key: str = EMBEDDING_KEY
) -> sv.Detections:
    """One frame of ``sv.Detections`` through ``tracker``; the tracked ones come back with ``tracker_id``.

    Args:
        tracker: the stream's :class:`~ibntrack.tracking.tracker.MultiObjectTracker`.
        detections: ``xyxy [N, 4]`` frame pixels; ``confidence [N]`` in ``[0, 1]`` (``None``: all 1);
            ``class_id [N]`` 0-based classes (``None``: all 0); ``data[embedding_key]`` an optional
            ``[N, E]`` appearance embedding (any scale; normalised by the tracker).
        embedding_key: the ``data`` key holding embeddings.

    Returns:
        ``detections[indices]`` — the input rows (boxes, confidence, class, mask, data) that belong to a
        confirmed track in this frame, in the tracker's output order, with ``tracker_id`` (int64) set.

    Raises:
        ValueError: ``detections`` is not an ``sv.Detections`` or its fields have wrong shapes or values.
    """
    sv = import_supervision()
    if not isinstance(detections, sv.Detections):
        raise ValueError(f"detections must be a supervision.Detections, got {type(detections).__name__}")
    boxes = np.asarray(detections.xyxy, np.float32).reshape(-1, 4)
    n = boxes.shape[0]
    if detections.confidence is None:
        scores = np.ones(n, np.float32)
    else:
        scores = np.asarray(detections.confidence, np.float32).reshape(-1)
    if detections.class_id is None:
        classes = np.zeros(n, np.int64)
    else:
        classes = np.asarray(detections.class_id).reshape(-1)
        if classes.size and classes.dtype.kind not in "iu":
            raise ValueError(f"detections.class_id must hold integers, got dtype {classes.dtype}")
        classes = classes.astype(np.int64)
        if classes.size and classes.min() < 0:
            raise ValueError(f"detections.class_id must be 0-based classes (>= 0), got {classes.min()}")
    embeddings = None
    if embedding_key in detections.data:
        embeddings = np.asarray(detections.data[embedding_key], np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != n:
            raise ValueError(
                f"detections.data[{embedding_key!r}] must have shape [N, E] with N = {n}, "
                f"got {embeddings.shape}"
            )
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(
            f"detections.confidence must be in [0, 1], got values in [{scores.min()}, {scores.max()}]"
        )
    tracks = tracker.update(boxes, scores, embeddings, classes)
    index = pair_tracks(tracks, boxes, scores, classes)
    out = detections[index]  # a new object: the caller's detections are not changed
    out.tracker_id = np.array([t.track_id for t in tracks], dtype=np.int64)
    return out


def tracks_to_detections(
    tracks: Sequence[Track], detections: Detections, class_names: Sequence[str] | None = None
) -> sv.Detections:
    """The tracks of one :meth:`ibntrack.Tracker.update` as ``sv.Detections``.

    Args:
        tracks: the tracks returned for the frame.
        detections: the frame's network detections (``Tracker.last_detections``, frame pixels).
        class_names: model class names; when given, ``data["class_name"]`` holds each row's name.

    Returns:
        One row per track, in the tracks' order: ``xyxy`` the detection box (frame pixels),
        ``confidence``, ``class_id``, ``tracker_id``, and ``data[EMBEDDING_KEY]`` the ``[K, E]`` unit
        embedding of the detection (when the model has a ReID branch).
    """
    sv = import_supervision()
    index = pair_tracks(tracks, detections.boxes, detections.scores, detections.classes)
    data: dict[str, np.ndarray] = {}
    if detections.emb_dim:
        data[EMBEDDING_KEY] = detections.embeddings[index]
    classes = detections.classes[index]
    if class_names is not None:
        names = np.asarray(list(class_names) + ["?"], dtype=object)
        data["class_name"] = names[np.minimum(classes, len(names) - 1)].astype(str)
    return sv.Detections(
        xyxy=detections.boxes[index].reshape(-1, 4),
        confidence=detections.scores[index],
        class_id=classes,
        tracker_id=np.array([t.track_id for t in tracks], dtype=np.int64),
        data=data,
    )


def read_result_detections(path: str | os.PathLike) -> Iterator[tuple[int, sv.Detections]]:
    """Reads a MOTChallenge result file (``frame,id,x,y,w,h,score,class,...``) frame by frame.

    Yields:
        ``(frame, sv.Detections)`` for every frame from 1 to the last frame in the file, in order (frames
        without rows yield empty detections, so line crossings are counted on a continuous stream):
        ``xyxy`` pixels, ``confidence``, ``tracker_id`` (the result ids) and ``class_id`` (column 8, the
        MOT class id written for multi-class models; 0 where it is ``-1`` or absent).

    Raises:
        MOTFormatError: a malformed line (names the file and the line).
    """
    from ibntrack.data.motio import read_results

    sv = import_supervision()
    path = Path(path)
    rows = read_results(path)  # validates every line
    classes = np.zeros(len(rows), np.int64)
    if len(rows):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        for i, line in enumerate(lines[: len(rows)]):
            parts = line.replace(" ", "").split(",")
            if len(parts) >= 8 and parts[7] not in ("", "-1"):
                classes[i] = max(int(float(parts[7])), 0)
    order = np.argsort(rows[:, 0], kind="stable")
    rows, classes = rows[order], classes[order]
    frames = rows[:, 0].astype(np.int64)
    last = int(frames.max()) if len(frames) else 0
    bounds = np.searchsorted(frames, np.arange(1, last + 2))
    for f in range(1, last + 1):
        lo, hi = bounds[f - 1], bounds[f]
        r = rows[lo:hi]
        xyxy = np.concatenate([r[:, 2:4], r[:, 2:4] + r[:, 4:6]], axis=1).astype(np.float32)
        yield (
            f,
            sv.Detections(
                xyxy=xyxy.reshape(-1, 4),
                confidence=r[:, 6].astype(np.float32),
                class_id=classes[lo:hi].copy(),
                tracker_id=r[:, 1].astype(np.int64),
            ),
        )
