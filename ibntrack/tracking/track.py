"""One tracked target: its life-cycle state, Kalman state and smoothed appearance embedding.

Life cycle (driven by :class:`ibntrack.tracking.tracker.MultiObjectTracker`, but changed only by the
methods below)::

    NEW --activate--> TRACKED (unconfirmed) --update+confirm--> TRACKED (confirmed, has an ID)
    TRACKED --mark_lost--> LOST --re_activate--> TRACKED
    any --mark_removed--> REMOVED (final)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from ibntrack.tracking.kalman import KalmanFilter, xyxy_to_xyah

__all__ = ["Track", "TrackState"]

_EPS = 1e-12
_VH_INDEX = 7  # height velocity in the 8-d Kalman state


class TrackState(Enum):
    """Life-cycle state of a :class:`Track`."""

    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Track:
    """A target followed over frames.

    Args:
        box_xyxy: ``[4]`` first detection box, xyxy pixels.
        score: detection confidence in ``[0, 1]``.
        cls: 0-based class; a track never changes class.
        embedding: ``[E]`` appearance embedding of the first detection, or ``None``.
        ema_alpha: weight of the past in the embedding EMA, ``smooth = α·smooth + (1 − α)·new``
            (then renormalised; FairMOT uses 0.9).

    Attributes:
        track_id: 1-based identity given by the tracker when the track is confirmed; 0 before.
        score: confidence of the latest matched detection.
        cls: class index.
        state: :class:`TrackState`.
        is_activated: confirmed (matched in two consecutive frames, or born in the first frame).
        tracklet_len: matched frames since (re)activation.
        start_frame: frame of the first detection.
        frame_id: frame of the latest matched detection.
        mean: ``[8]`` Kalman mean ``(cx, cy, a, h, vcx, vcy, va, vh)`` or ``None`` before activation.
        covariance: ``[8, 8]`` or ``None``.
        embedding: ``[E]`` smoothed unit embedding, or ``None`` if no detection carried one.
        curr_embedding: ``[E]`` unit embedding of the latest detection that carried one.
    """

    def __init__(
        self,
        box_xyxy: np.ndarray,
        score: float,
        cls: int = 0,
        embedding: np.ndarray | None = None,
        ema_alpha: float = 0.9,
    ) -> None:
        if not 0.0 <= ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in [0, 1], got {ema_alpha!r}")
        self._det_box = np.asarray(box_xyxy, dtype=np.float32).reshape(4).copy()
        self.score = float(score)
        self.cls = int(cls)
        self.ema_alpha = float(ema_alpha)
        self.track_id = 0
        self.state = TrackState.NEW
        self.is_activated = False
        self.tracklet_len = 0
        self.start_frame = 0
        self.frame_id = 0
        self.mean: np.ndarray | None = None
        self.covariance: np.ndarray | None = None
        self.embedding: np.ndarray | None = None
        self.curr_embedding: np.ndarray | None = None
        self._update_embedding(embedding)

    # ------------------------------------------------------------------ views
    @property
    def box(self) -> np.ndarray:
        """``[4]`` float32 xyxy pixels: the Kalman estimate (the detection box before activation)."""
        if self.mean is None:
            return self._det_box.copy()
        cx, cy, a, h = self.mean[:4].tolist()
        half_w, half_h = 0.5 * a * h, 0.5 * h
        return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dtype=np.float32)

    @property
    def area(self) -> float:
        """Box area in pixels² (``w·h = a·h²``)."""
        if self.mean is None:
            x1, y1, x2, y2 = self._det_box.tolist()
            return (x2 - x1) * (y2 - y1)
        a, h = self.mean[2:4].tolist()
        return a * h * h

    @property
    def age(self) -> int:
        """Frames from the first to the latest matched detection."""
        return self.frame_id - self.start_frame

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return (
            f"Track(id={self.track_id}, cls={self.cls}, state={self.state.name}, box=[{box}], "
            f"score={self.score:.2f}, frames={self.start_frame}-{self.frame_id})"
        )

    # ------------------------------------------------------------------ life cycle
    def activate(self, kf: KalmanFilter, frame_id: int, track_id: int | None = None) -> None:
        """Start the Kalman state from the first detection; ``track_id`` confirms at once (first frame)."""
        self.mean, self.covariance = kf.initiate(xyxy_to_xyah(self._det_box))
        self.state = TrackState.TRACKED
        self.tracklet_len = 0
        self.start_frame = self.frame_id = int(frame_id)
        if track_id is not None:
            self.confirm(track_id)

    def confirm(self, track_id: int) -> None:
        """Give the track its identity and mark it activated (output from now on)."""
        if track_id < 1:
            raise ValueError(f"track_id must be >= 1, got {track_id!r}")
        self.track_id = int(track_id)
        self.is_activated = True

    def update(
        self,
        kf: KalmanFilter,
        box_xyxy: np.ndarray,
        score: float,
        frame_id: int,
        embedding: np.ndarray | None = None,
    ) -> None:
        """Correct a TRACKED track with its matched detection of this frame."""
        mean, cov = kf.update(self._require_mean(), self.covariance, xyxy_to_xyah(box_xyxy))
        self._set_matched(mean, cov, score, frame_id, embedding)
        self.tracklet_len += 1

    def re_activate(
        self,
        kf: KalmanFilter,
        box_xyxy: np.ndarray,
        score: float,
        frame_id: int,
        embedding: np.ndarray | None = None,
    ) -> None:
        """Bring a LOST track back with its matched detection; it keeps its identity."""
        mean, cov = kf.update(self._require_mean(), self.covariance, xyxy_to_xyah(box_xyxy))
        self._set_matched(mean, cov, score, frame_id, embedding)
        self.tracklet_len = 0
        self.is_activated = True

    def mark_lost(self) -> None:
        """No detection matched this frame; keep predicting and try to re-find it."""
        self.state = TrackState.LOST

    def mark_removed(self) -> None:
        """End the track for good."""
        self.state = TrackState.REMOVED

    @staticmethod
    def multi_predict(kf: KalmanFilter, tracks: Sequence[Track]) -> None:
        """Advance the Kalman state of ``tracks`` by one frame with one vectorised prediction.

        The height velocity of tracks that are not TRACKED is zeroed first (ByteTrack), so a lost box
        does not keep growing or shrinking while unseen.
        """
        live = [t for t in tracks if t.mean is not None]
        if not live:
            return
        means = np.stack([t.mean for t in live])  # [N, 8]
        covs = np.stack([t.covariance for t in live])  # [N, 8, 8]
        not_tracked = np.array([t.state != TrackState.TRACKED for t in live])
        means[not_tracked, _VH_INDEX] = 0.0
        means, covs = kf.multi_predict(means, covs)
        for track, mean, cov in zip(live, means, covs, strict=True):
            track.mean, track.covariance = mean, cov

    @staticmethod
    def multi_update(
        kf: KalmanFilter,
        tracks: Sequence[Track],
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        frame_id: int,
        embeddings: np.ndarray | None = None,
    ) -> None:
        """Vectorised correction: track ``i`` with detection ``i``.

        Equivalent to :meth:`update` for TRACKED tracks and :meth:`re_activate` for the others.

        Args:
            kf: the motion model.
            tracks: ``K`` activated tracks.
            boxes_xyxy: ``[K, 4]`` matched detection boxes, xyxy pixels.
            scores: ``[K]``.
            frame_id: current frame.
            embeddings: ``[K, E]`` or ``None``.
        """
        if not tracks:
            return
        means = np.stack([t._require_mean() for t in tracks])  # [K, 8]
        covs = np.stack([t.covariance for t in tracks])  # [K, 8, 8]
        means, covs = kf.multi_update(means, covs, xyxy_to_xyah(boxes_xyxy))
        for i, track in enumerate(tracks):
            was_tracked = track.state == TrackState.TRACKED
            emb = None if embeddings is None else embeddings[i]
            track._set_matched(means[i], covs[i], scores[i], frame_id, emb)
            if was_tracked:
                track.tracklet_len += 1
            else:
                track.tracklet_len = 0
                track.is_activated = True

    # ------------------------------------------------------------------ helpers
    def _require_mean(self) -> np.ndarray:
        if self.mean is None:
            raise ValueError("track must be activated before it is updated")
        return self.mean

    def _set_matched(
        self, mean: np.ndarray, cov: np.ndarray, score: float, frame_id: int, embedding: np.ndarray | None
    ) -> None:
        self.mean, self.covariance = mean, cov
        self.state = TrackState.TRACKED
        self.frame_id = int(frame_id)
        self.score = float(score)
        self._update_embedding(embedding)

    def _update_embedding(self, embedding: np.ndarray | None) -> None:
        """FairMOT feature smoothing: EMA of unit embeddings, renormalised."""
        if embedding is None:
            return
        feat = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if feat.size == 0:
            return
        feat = feat / max(float(np.sqrt(feat @ feat)), _EPS)
        self.curr_embedding = feat
        if self.embedding is None:
            smooth = feat.copy()
        else:
            smooth = self.ema_alpha * self.embedding + (1.0 - self.ema_alpha) * feat
        self.embedding = (smooth / max(float(np.sqrt(smooth @ smooth)), _EPS)).astype(np.float32)
