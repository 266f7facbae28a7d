"""One frame's detections as the association reads them (:class:`Frame`), and their validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ibntrack.tracking.kalman import xyxy_to_xyah
from ibntrack.tracking.table import TrackTable

__all__ = ["Frame", "validate_detections", "validate_warp"]

_MAX_COORD = 1e6  # pixels: no camera frame is a million pixels wide


@dataclass
class Frame:
    """One frame's validated detections (``N`` rows), the predicted track boxes and the matches so far."""

    boxes: np.ndarray  # [N, 4] float32 xyxy
    scores: np.ndarray  # [N] float32
    embeddings: np.ndarray | None  # [N, E] float32 or None
    classes: np.ndarray  # [N] int64
    xyah: np.ndarray  # [N, 4] float64 Kalman measurements
    track_boxes: np.ndarray | None = None  # [T, 4] float64 xyxy, every table row, set after step 1
    matched_rows: list[np.ndarray] = field(default_factory=list)  # table rows matched, per step
    matched_dets: list[np.ndarray] = field(default_factory=list)  # their detections, per step
    clean: np.ndarray | None = None  # [N] bool, gated pipeline with embeddings: embedding trustworthy
    reliable: np.ndarray | None = None  # [T] bool, gated pipeline with embeddings: track appearance proven
    vetoed: bool = False  # some pair was vetoed by appearance this frame
    iou_all: np.ndarray | None = None  # [T, N] 1 − IoU of predicted boxes, computed on first use
    one_class: bool | None = None  # every detection and track has the same class (set on first use)
    sim_all: np.ndarray | None = None  # [T, N] cosine of smoothed track and detection embeddings
    maha_all: np.ndarray | None = None  # [T, N] squared Mahalanobis distances (predicted, warped)


def validate_detections(
    table: TrackTable,
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    embeddings: np.ndarray | None,
    classes: np.ndarray | None,
) -> Frame:
    """One frame's detections checked and converted (embeddings normalised, classes int64).

    Raises:
        ValueError: naming the argument: wrong shape, non-finite values, ``x2 < x1``, scores outside
            ``[0, 1]``, zero embedding rows, or an embedding size other than earlier frames'.
    """
    emb_dim = table.emb_dim if table.has_emb.any() else 0
    boxes = np.asarray(boxes_xyxy, dtype=np.float32)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes_xyxy must have shape [N, 4], got {boxes.shape}")
    n = boxes.shape[0]
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape [N] = [{n}], got {scores.shape}")
    if n:
        # One reduction per input on the common path; the diagnosis only when something is off.
        biggest = np.abs(boxes).max()  # NaN propagates
        if not biggest <= _MAX_COORD:
            if not np.isfinite(boxes).all():
                raise ValueError("boxes_xyxy must be finite (no NaN or inf)")
            raise ValueError(  # beyond any image; w * h would overflow float32
                f"boxes_xyxy coordinates must be within ±{_MAX_COORD:g} pixels, got {biggest:g}"
            )
        if (boxes[:, 2:] < boxes[:, :2]).any():
            bad = int(np.flatnonzero((boxes[:, 2:] < boxes[:, :2]).any(axis=1))[0])
            raise ValueError(f"boxes_xyxy must have x2 >= x1 and y2 >= y1 (xyxy), row {bad} is {boxes[bad]}")
        lo, hi = scores.min(), scores.max()
        if not (lo >= 0.0 and hi <= 1.0):
            if not np.isfinite(scores).all():
                raise ValueError("scores must be finite (no NaN or inf)")
            raise ValueError(f"scores must be in [0, 1], got values in [{lo}, {hi}]")
    emb = None
    if embeddings is not None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(f"embeddings must have shape [N, E] with N = {n}, got {emb.shape}")
        if emb.shape[1] == 0:
            emb = None
        elif emb_dim and emb.shape[1] != emb_dim:
            raise ValueError(
                f"embeddings must have E = {emb_dim} columns like earlier frames, got {emb.shape[1]}"
            )
        elif n:
            norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))  # NaN / inf rows give NaN / inf
            if not (norms.min() > 1e-12 and norms.max() < np.inf):
                if not np.isfinite(emb).all():
                    raise ValueError("embeddings must be finite (no NaN or inf)")
                raise ValueError(
                    f"embeddings must not have zero rows (row {int(np.argmin(norms))} has norm 0)"
                )
            emb = emb / norms[:, None]
    if classes is None:
        cls = np.zeros(n, dtype=np.int64)
    else:
        cls_in = np.asarray(classes)
        if cls_in.shape != (n,):
            raise ValueError(f"classes must have shape [N] = [{n}], got {cls_in.shape}")
        cls = cls_in.astype(np.int64, copy=False)
        if cls_in.dtype.kind not in "iub" and not np.array_equal(cls, cls_in):
            raise ValueError("classes must hold integers")
    return Frame(boxes=boxes, scores=scores, embeddings=emb, classes=cls, xyah=xyxy_to_xyah(boxes))


def validate_warp(warp: np.ndarray | None) -> np.ndarray | None:
    """``warp`` as a finite ``[2, 3]`` float64 affine, or ``None``."""
    if warp is None:
        return None
    m = np.asarray(warp, dtype=np.float64)
    if m.shape == (3, 3):
        if not np.allclose(m[2], [0.0, 0.0, 1.0]):
            raise ValueError(f"warp must be affine: a [3, 3] warp needs the last row 0 0 1, got {m[2]}")
        m = m[:2]
    if m.shape != (2, 3):
        raise ValueError(f"warp must have shape [2, 3] (or [3, 3] affine), got {np.shape(warp)}")
    if not np.isfinite(m).all():
        raise ValueError("warp must be finite (no NaN or inf)")
    if abs(np.linalg.det(m[:, :2])) < 1e-9:
        raise ValueError("warp must be invertible (its 2x2 part has determinant 0)")
    return m
