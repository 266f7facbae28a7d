"""Multi-object tracker (the tracking module): FairMOT appearance association + ByteTrack's second pass.

``MultiObjectTracker.update`` takes one frame's detections (numpy, xyxy pixels) and runs these steps:

1. predict every tracked and lost track one frame ahead (vectorised Kalman prediction);
2. match high-score detections to tracked and lost tracks by appearance (cosine distance of smoothed
   embeddings) fused with Kalman motion and gated by it (skipped without embeddings);
3. match the rest by IoU with the predicted boxes — tracked tracks only, with the stricter
   ``match_thresh_iou_after_emb``, when step 2 ran (FairMOT: lost tracks are re-found by appearance);
   tracked and lost tracks with ``match_thresh_iou`` otherwise (ByteTrack's first association);
4. match tracked tracks still unmatched to low-score detections by IoU (ByteTrack's second pass); the
   tracked tracks left become LOST;
5. match unconfirmed tracks (born last frame) to the remaining high-score detections by IoU: matched ones
   are confirmed and get an ID, the others are removed; then every track matched in steps 2–5 is corrected
   with its detection in one batch (Kalman update, embedding EMA; a step never reads the state of a track
   that an earlier step matched, so deferring the corrections changes nothing);
6. start unconfirmed tracks from the remaining high-score detections scoring at least ``new_track_thresh``
   (confirmed at once in the first frame);
7. remove lost tracks unseen for ``max_time_lost`` frames (the buffer; see ``_remove_expired``).

Track IDs come from a counter owned by the tracker instance; :meth:`MultiObjectTracker.reset` restarts it.
The tracks' state lives in one :class:`~ibntrack.tracking.table.TrackTable` (arrays over tracks), so each
step is a few vectorised operations on row indices; the :class:`Track` objects returned are views of rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ibntrack.tracking.kalman import KalmanFilter, xyxy_to_xyah
from ibntrack.tracking.matching import (
    embedding_distance,
    fuse_motion,
    fuse_score,
    iou_distance,
    linear_assignment,
)
from ibntrack.tracking.table import TrackState, TrackTable
from ibntrack.tracking.track import Track

__all__ = ["MultiObjectTracker", "TrackerConfig"]

_REFERENCE_FPS = 30.0  # track_buffer is given in frames at this frame rate
_TRACKED, _LOST = TrackState.TRACKED.value, TrackState.LOST.value


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of :class:`MultiObjectTracker`. Costs are distances: a pair matches only below them.

    Attributes:
        det_thresh: detections scoring at least this are "high": they go through steps 2, 3, 5, 6.
        low_thresh: detections with ``low_thresh <= score < det_thresh`` are used only by the second
            pass (step 4); lower scores are dropped. Setting it equal to ``det_thresh`` disables step 4.
        new_track_thresh: minimum score of an unmatched high detection to start a track (step 6).
        match_thresh_emb: maximum fused appearance/motion cost in step 2 (cosine distance ≈ 0.4).
        match_thresh_iou: maximum ``1 − IoU`` in step 3 without the appearance step, where IoU is the
            first association (ByteTrack's 0.8, i.e. IoU ≥ 0.2: low-frame-rate and fast objects move far
            between frames).
        match_thresh_iou_after_emb: maximum ``1 − IoU`` in step 3 after the appearance step (FairMOT's
            0.5): it only sees tracked tracks whose appearance did not match, and a looser value lets
            them take a neighbour's detection (more identity switches).
        second_match_thresh: maximum ``1 − IoU`` in step 4 (low-score detections).
        unconfirmed_match_thresh: maximum ``1 − IoU`` in step 5 (unconfirmed tracks).
        track_buffer: frames a lost track is kept (and can be re-found) at 30 fps; scaled by
            ``frame_rate / 30``. 0 removes a track as soon as it is missed.
        motion_lambda: weight of the appearance cost in step 2; ``1 − motion_lambda`` weighs the squared
            Mahalanobis distance.
        ema_alpha: weight of the past in each track's embedding EMA.
        use_embeddings: run step 2 when embeddings are given.
        per_class: never associate across classes (multi-class models).
        min_box_area: output filter: tracks with a smaller box area (pixels²) are tracked but not returned.
        gating: in step 2, forbid pairs whose Mahalanobis distance exceeds the chi-square 0.95 gate.
        fuse_score: in steps 3 and 5, weight IoU similarity by detection score (ByteTrack).
    """

    det_thresh: float = 0.5
    low_thresh: float = 0.1
    new_track_thresh: float = 0.6
    match_thresh_emb: float = 0.4
    match_thresh_iou: float = 0.8
    match_thresh_iou_after_emb: float = 0.5
    second_match_thresh: float = 0.5
    unconfirmed_match_thresh: float = 0.7
    track_buffer: int = 30
    motion_lambda: float = 0.98
    ema_alpha: float = 0.9
    use_embeddings: bool = True
    per_class: bool = True
    min_box_area: float = 0.0
    gating: bool = True
    fuse_score: bool = False

    def __post_init__(self) -> None:
        for name in ("det_thresh", "low_thresh", "new_track_thresh", "motion_lambda", "ema_alpha"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        for name in (
            "match_thresh_iou",
            "match_thresh_iou_after_emb",
            "second_match_thresh",
            "unconfirmed_match_thresh",
        ):
            value = getattr(self, name)
            _check_range(name, value, 0.0, 1.0)
            if value == 0.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if not (np.isfinite(self.match_thresh_emb) and self.match_thresh_emb > 0):
            raise ValueError(
                f"match_thresh_emb must be a positive finite number, got {self.match_thresh_emb!r}"
            )
        if self.low_thresh > self.det_thresh:
            raise ValueError(f"low_thresh ({self.low_thresh}) must be <= det_thresh ({self.det_thresh})")
        if (
            isinstance(self.track_buffer, bool)
            or not isinstance(self.track_buffer, int)
            or self.track_buffer < 0
        ):
            raise ValueError(f"track_buffer must be an int >= 0, got {self.track_buffer!r}")
        if not (np.isfinite(self.min_box_area) and self.min_box_area >= 0):
            raise ValueError(f"min_box_area must be >= 0, got {self.min_box_area!r}")
        for name in ("use_embeddings", "per_class", "gating", "fuse_score"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def replace(self, **changes: object) -> TrackerConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (isinstance(value, int | float) and lo <= value <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")


@dataclass
class _Frame:
    """One frame's validated detections (``N`` rows), the predicted track boxes and the matches so far."""

    boxes: np.ndarray  # [N, 4] float32 xyxy
    scores: np.ndarray  # [N] float32
    embeddings: np.ndarray | None  # [N, E] float32 or None
    classes: np.ndarray  # [N] int64
    xyah: np.ndarray  # [N, 4] float64 Kalman measurements
    track_boxes: np.ndarray | None = None  # [T, 4] float64 xyxy, every table row, set after step 1
    matched_rows: list[np.ndarray] = field(default_factory=list)  # table rows matched, per step
    matched_dets: list[np.ndarray] = field(default_factory=list)  # their detections, per step


class MultiObjectTracker:
    """Online multi-object tracker; one instance per video stream.

    The tracker owns the state of its tracks as one :class:`~ibntrack.tracking.table.TrackTable` (Kalman
    means ``[T, 8]``, covariances ``[T, 8, 8]``, embeddings ``[T, E]``, life-cycle fields ``[T]``); every
    step below works on index arrays of table rows, and the returned :class:`Track` objects are views of
    rows.

    Args:
        config: thresholds (defaults: :class:`TrackerConfig`).
        frame_rate: frames per second of the stream; scales ``track_buffer``.
        kalman: motion model (default :class:`KalmanFilter` with DeepSORT noise weights).
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        frame_rate: float = 30.0,
        kalman: KalmanFilter | None = None,
    ) -> None:
        if not (isinstance(frame_rate, int | float) and np.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f"frame_rate must be a positive number, got {frame_rate!r}")
        self.config = config if config is not None else TrackerConfig()
        if not isinstance(self.config, TrackerConfig):
            raise ValueError(f"config must be a TrackerConfig or None, got {type(self.config).__name__}")
        self.frame_rate = float(frame_rate)
        #: Frames a lost track survives (can be re-found), ``round(frame_rate / 30 · track_buffer)``.
        self.max_time_lost = int(round(self.frame_rate / _REFERENCE_FPS * self.config.track_buffer))
        self.kalman = kalman if kalman is not None else KalmanFilter()
        self._table = TrackTable(self.config.ema_alpha)
        self._frame_id = 0
        self._last_id = 0

    # ------------------------------------------------------------------ inspection
    @property
    def frame_id(self) -> int:
        """Number of frames processed since construction or :meth:`reset` (the current frame, 1-based)."""
        return self._frame_id

    @property
    def tracked_tracks(self) -> list[Track]:
        """Tracks in state TRACKED, confirmed or not."""
        return self._views(self._table.state == _TRACKED)

    @property
    def lost_tracks(self) -> list[Track]:
        """Tracks in state LOST (still recoverable)."""
        return self._views(self._table.state == _LOST)

    def reset(self) -> None:
        """Forget all tracks and restart frame count and IDs at 1 (call between sequences)."""
        self._table = TrackTable(self.config.ema_alpha)
        self._frame_id = 0
        self._last_id = 0

    def update_with_detections(self, detections, embedding_key: str = "embedding"):
        """:meth:`update` with a ``supervision.Detections`` (``pip install ibntrack[supervision]``).

        Returns the input rows that belong to a confirmed track this frame, with ``tracker_id`` set; see
        :func:`ibntrack.interop.supervision.update_with_detections`.
        """
        from ibntrack.interop.supervision import update_with_detections

        return update_with_detections(self, detections, embedding_key=embedding_key)

    # ------------------------------------------------------------------ main entry
    def update(
        self,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        embeddings: np.ndarray | None = None,
        classes: np.ndarray | None = None,
    ) -> list[Track]:
        """Advance one frame.

        Args:
            boxes_xyxy: ``[N, 4]`` detection boxes, xyxy, original-image pixels.
            scores: ``[N]`` confidences in ``[0, 1]``.
            embeddings: ``[N, E]`` appearance embeddings (normalised here), or ``None`` / ``E = 0``.
            classes: ``[N]`` 0-based integer classes, or ``None`` (all 0).

        Returns:
            The confirmed tracks matched in this frame (state TRACKED) whose box area is at least
            ``min_box_area``. They are live views of the tracker's state: read them before the next
            ``update``.
        """
        dets = self._validate(boxes_xyxy, scores, embeddings, classes)
        self._frame_id += 1
        table = self._table
        high = np.flatnonzero(dets.scores >= self.config.det_thresh)
        low = np.flatnonzero((dets.scores >= self.config.low_thresh) & (dets.scores < self.config.det_thresh))
        tracked = table.state == _TRACKED
        unconfirmed = np.flatnonzero(tracked & ~table.activated)
        pool = np.flatnonzero(table.activated & (tracked | (table.state == _LOST)))  # rows, creation order

        table.predict(self.kalman)  # 1: every row is TRACKED or LOST here
        dets.track_boxes = table.boxes()  # predicted; steps 2-5 read only tracks they have not matched
        appearance = self.config.use_embeddings and dets.embeddings is not None
        if appearance:
            pool, high = self._match_appearance(pool, dets, high)  # 2
        pool, high = self._match_iou(pool, dets, high, after_appearance=appearance)  # 3
        self._match_low_scores(pool, dets, low)  # 4
        high = self._match_unconfirmed(unconfirmed, dets, high)  # 5
        self._correct_matched(dets)  # 5, end
        self._start_tracks(dets, high)  # 6
        self._remove_expired()  # 7

        table.compact()
        out = (table.state == _TRACKED) & table.activated & (table.frame_id == self._frame_id)
        if out.any():
            out &= table.areas() >= self.config.min_box_area
        return self._views(out)

    # ------------------------------------------------------------------ steps
    def _match_appearance(
        self, pool: np.ndarray, dets: _Frame, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 2: cosine distance of smoothed embeddings, fused with and gated by motion."""
        table = self._table
        if pool.size == 0 or high.size == 0:
            return pool, high
        with_emb = table.has_emb[pool]
        if with_emb.all():
            cost = embedding_distance(table.emb[pool], dets.embeddings[high])
        else:
            cost = np.full((pool.size, high.size), np.inf)
            cost[with_emb] = embedding_distance(table.emb[pool[with_emb]], dets.embeddings[high])
        if with_emb.any():
            cost = fuse_motion(
                self.kalman,
                cost,
                table.means[pool],
                table.covs[pool],
                dets.xyah[high],
                lambda_=self.config.motion_lambda,
                gate=self.config.gating,
            )
        return self._assign(pool, dets, high, cost, self.config.match_thresh_emb)

    def _match_iou(
        self, pool: np.ndarray, dets: _Frame, high: np.ndarray, after_appearance: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 3: IoU with predicted boxes; lost tracks take part only without the appearance step.

        Returns the unmatched tracked tracks (lost ones that stay unmatched are left out) and the
        unmatched high-score detections.
        """
        state = self._table.state
        if after_appearance:
            candidates, thresh = pool[state[pool] == _TRACKED], self.config.match_thresh_iou_after_emb
        else:
            candidates, thresh = pool, self.config.match_thresh_iou
        cost = self._iou_cost(candidates, dets, high, self.config.fuse_score)
        rest, high = self._assign(candidates, dets, high, cost, thresh)
        return rest[state[rest] == _TRACKED], high

    def _match_low_scores(self, pool: np.ndarray, dets: _Frame, low: np.ndarray) -> None:
        """Step 4: ByteTrack's second pass; tracked tracks still unmatched afterwards become LOST."""
        cost = self._iou_cost(pool, dets, low, fuse=False)
        rest, _ = self._assign(pool, dets, low, cost, self.config.second_match_thresh)
        self._table.mark_lost(rest)

    def _match_unconfirmed(self, unconfirmed: np.ndarray, dets: _Frame, high: np.ndarray) -> np.ndarray:
        """Step 5: confirm tracks born last frame that match again; remove the others."""
        cost = self._iou_cost(unconfirmed, dets, high, self.config.fuse_score)
        matches, u_track, u_det = linear_assignment(
            self._class_gate(unconfirmed, dets, high, cost), self.config.unconfirmed_match_thresh
        )
        self._record_matches(unconfirmed, dets, high, matches)
        self._table.confirm(unconfirmed[matches[:, 0]], self._next_ids(matches.shape[0]))
        self._table.mark_removed(unconfirmed[u_track])
        return high[u_det]

    def _start_tracks(self, dets: _Frame, high: np.ndarray) -> None:
        """Step 6: new tracks from confident unmatched detections; confirmed at once in frame 1."""
        new = high[dets.scores[high] >= self.config.new_track_thresh]
        if new.size == 0:
            return
        embeddings = None if dets.embeddings is None else dets.embeddings[new]
        rows = self._table.append(dets.boxes[new], dets.scores[new], dets.classes[new], embeddings)
        ids = self._next_ids(new.size) if self._frame_id == 1 else None
        self._table.activate(self.kalman, rows, self._frame_id, ids)

    def _remove_expired(self) -> None:
        """Step 7: lost tracks unseen for ``max_time_lost`` frames are removed.

        A track last matched in frame ``f`` can be re-found up to frame ``f + max_time_lost`` and is removed
        at the end of that frame if it was not.
        """
        table = self._table
        expired = (table.state == _LOST) & (self._frame_id - table.frame_id >= self.max_time_lost)
        table.mark_removed(np.flatnonzero(expired))

    # ------------------------------------------------------------------ helpers
    def _next_ids(self, count: int) -> np.ndarray:
        """``count`` new consecutive identities."""
        ids = np.arange(self._last_id + 1, self._last_id + 1 + count)
        self._last_id += count
        return ids

    def _views(self, mask: np.ndarray) -> list[Track]:
        """The :class:`Track` views of the table rows selected by ``mask [T]``."""
        return [Track.of(self._table, row) for row in np.flatnonzero(mask).tolist()]

    def _iou_cost(self, rows: np.ndarray, dets: _Frame, idx: np.ndarray, fuse: bool) -> np.ndarray:
        """``[rows.size, idx.size]`` ``1 − IoU`` between predicted track boxes and detections ``idx``."""
        if rows.size == 0 or idx.size == 0:
            return np.zeros((rows.size, idx.size))
        cost = iou_distance(dets.track_boxes[rows], dets.boxes[idx])
        if fuse:
            cost = fuse_score(cost, dets.scores[idx])
        return cost

    def _class_gate(self, rows: np.ndarray, dets: _Frame, idx: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """With ``per_class``, forbid (``inf``) every pair whose track and detection classes differ."""
        if not self.config.per_class or cost.size == 0:
            return cost
        same = self._table.classes[rows][:, None] == dets.classes[idx][None, :]
        return cost if same.all() else np.where(same, cost, np.inf)

    def _assign(
        self, rows: np.ndarray, dets: _Frame, idx: np.ndarray, cost: np.ndarray, thresh: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``cost``, record the matches (corrected after step 5), return the leftovers."""
        matches, u_track, u_det = linear_assignment(self._class_gate(rows, dets, idx, cost), thresh)
        self._record_matches(rows, dets, idx, matches)
        return rows[u_track], idx[u_det]

    @staticmethod
    def _record_matches(rows: np.ndarray, dets: _Frame, idx: np.ndarray, matches: np.ndarray) -> None:
        """Note that rows ``rows[matches[:, 0]]`` matched detections ``idx[matches[:, 1]]``."""
        if matches.shape[0]:
            dets.matched_rows.append(rows[matches[:, 0]])
            dets.matched_dets.append(idx[matches[:, 1]])

    def _correct_matched(self, dets: _Frame) -> None:
        """Correct every matched track with its detection: one Kalman update and embedding EMA batch.

        Lost tracks are re-activated (tracklet restarts), tracked ones extend their tracklet.
        """
        if not dets.matched_rows:
            return
        rows, j = np.concatenate(dets.matched_rows), np.concatenate(dets.matched_dets)
        self._table.update(
            self.kalman,
            rows,
            dets.boxes[j],
            dets.scores[j],
            self._frame_id,
            None if dets.embeddings is None else dets.embeddings[j],
            xyah=dets.xyah[j],
        )

    @staticmethod
    def _validate(
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        embeddings: np.ndarray | None,
        classes: np.ndarray | None,
    ) -> _Frame:
        boxes = np.asarray(boxes_xyxy, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes_xyxy must have shape [N, 4], got {boxes.shape}")
        n = boxes.shape[0]
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (n,):
            raise ValueError(f"scores must have shape [N] = [{n}], got {scores.shape}")
        if not np.isfinite(boxes).all():
            raise ValueError("boxes_xyxy must be finite")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite")
        emb = None
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise ValueError(f"embeddings must have shape [N, E] with N = {n}, got {emb.shape}")
            if emb.shape[1] == 0:
                emb = None
            elif not np.isfinite(emb).all():
                raise ValueError("embeddings must be finite")
        if classes is None:
            cls = np.zeros(n, dtype=np.int64)
        else:
            cls_in = np.asarray(classes)
            if cls_in.shape != (n,):
                raise ValueError(f"classes must have shape [N] = [{n}], got {cls_in.shape}")
            cls = cls_in.astype(np.int64, copy=False)
            if cls_in.dtype.kind not in "iub" and not np.array_equal(cls, cls_in):
                raise ValueError("classes must hold integers")
        return _Frame(boxes=boxes, scores=scores, embeddings=emb, classes=cls, xyah=xyxy_to_xyah(boxes))
