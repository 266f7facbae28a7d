"""The state of many tracks as one array per field (the tracking module's state store).

:class:`~ibntrack.tracking.tracker.MultiObjectTracker` corrects, predicts and filters tens to hundreds of
tracks in every frame. With the state in per-track objects, every step stacked their Kalman means and
covariances into arrays and looped in Python to write the results back; here the tracker owns one
:class:`TrackTable` whose rows are its tracks (creation order), and every step is a few vectorised numpy
operations on an index array of rows:

============== ================= =====================================================================
field          shape, dtype      meaning
============== ================= =====================================================================
``det_boxes``  ``[T, 4]`` f32    first detection box, xyxy pixels (the box before activation)
``scores``     ``[T]`` f64       confidence of the latest matched detection
``classes``    ``[T]`` i64       class index (never changes)
``state``      ``[T]`` i8        :class:`TrackState` value
``activated``  ``[T]`` bool      confirmed (has an ID, is output)
``track_ids``  ``[T]`` i64       1-based identity, 0 before confirmation
``tracklet_len`` ``[T]`` i64     matched frames since (re)activation
``start_frame`` ``[T]`` i64      frame of activation
``frame_id``   ``[T]`` i64       frame of the latest matched detection
``has_mean``   ``[T]`` bool      the Kalman state is set (activated once)
``means``      ``[T, 8]`` f64    Kalman mean ``(cx, cy, a, h, vcx, vcy, va, vh)``
``covs``       ``[T, 8, 8]`` f64 Kalman covariance
``has_emb``    ``[T]`` bool      a detection with an embedding was matched
``emb``        ``[T, E]`` f32    smoothed unit embedding (EMA, renormalised)
``curr_emb``   ``[T, E]`` f32    unit embedding of the latest detection that carried one
``obs_boxes``  ``[T, 4]`` f32    latest matched detection box, xyxy (the observation, not the estimate)
``emb_count``  ``[T]`` i64       detections whose embedding entered the smoothed one
``emb_consistency`` ``[T]`` f64  EMA of the cosine between the smoothed embedding and each embedding
                                 that entered it (how much this track's appearance can be trusted)
============== ================= =====================================================================

The table's methods (:meth:`TrackTable.activate`, :meth:`~TrackTable.update`, …) are the only code that
changes track state; they are the batched forms of the :class:`~ibntrack.tracking.track.Track` methods,
which call them with one row. A ``Track`` is a light view ``(table, row)``: reading its attributes reads
the row. :meth:`TrackTable.compact` drops removed rows and keeps the views in step (the views of removed
tracks keep reading a frozen copy of their last state).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from ibntrack.tracking.kalman import KalmanFilter, xyxy_to_xyah

__all__ = ["TrackState", "TrackTable"]

_EPS = 1e-12
_VH_INDEX = 7  # height velocity in the 8-d Kalman state
_STATE_DIM = 8


class TrackState(Enum):
    """Life-cycle state of a track."""

    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


_NEW, _TRACKED, _LOST, _REMOVED = (s.value for s in TrackState)

#: Every per-row array, in the order :meth:`TrackTable.append` and :meth:`TrackTable.compact` handle them.
_FIELDS = (
    "det_boxes",
    "scores",
    "classes",
    "state",
    "activated",
    "track_ids",
    "tracklet_len",
    "start_frame",
    "frame_id",
    "has_mean",
    "means",
    "covs",
    "has_emb",
    "emb",
    "curr_emb",
    "obs_boxes",
    "emb_count",
    "emb_consistency",
)
_CONSISTENCY_ALPHA = 0.8  # weight of the past in the consistency EMA


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x [K, E]`` float32 scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # [K]
    return x / np.maximum(norms, _EPS)[:, None]


class TrackTable:
    """Structure-of-arrays state of a set of tracks; rows are tracks (see the module docstring).

    Args:
        ema_alpha: weight of the past in the embedding EMA, ``smooth = α·smooth + (1 − α)·new`` (then
            renormalised; FairMOT uses 0.9).

    Attributes:
        views: per row, the :class:`~ibntrack.tracking.track.Track` view of it, or ``None`` while nobody
            asked for one (views are made lazily by ``Track.of``). Each view has a ``_bind(table, row)``
            method that :meth:`compact` calls when rows move.
    """

    def __init__(self, ema_alpha: float = 0.9) -> None:
        if not 0.0 <= ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in [0, 1], got {ema_alpha!r}")
        self.ema_alpha = float(ema_alpha)
        self.det_boxes = np.zeros((0, 4), dtype=np.float32)
        self.scores = np.zeros(0)
        self.classes = np.zeros(0, dtype=np.int64)
        self.state = np.zeros(0, dtype=np.int8)
        self.activated = np.zeros(0, dtype=bool)
        self.track_ids = np.zeros(0, dtype=np.int64)
        self.tracklet_len = np.zeros(0, dtype=np.int64)
        self.start_frame = np.zeros(0, dtype=np.int64)
        self.frame_id = np.zeros(0, dtype=np.int64)
        self.has_mean = np.zeros(0, dtype=bool)
        self.means = np.zeros((0, _STATE_DIM))
        self.covs = np.zeros((0, _STATE_DIM, _STATE_DIM))
        self.has_emb = np.zeros(0, dtype=bool)
        self.emb = np.zeros((0, 0), dtype=np.float32)
        self.curr_emb = np.zeros((0, 0), dtype=np.float32)
        self.obs_boxes = np.zeros((0, 4), dtype=np.float32)
        self.emb_count = np.zeros(0, dtype=np.int64)
        self.emb_consistency = np.zeros(0)
        #: What a :class:`~ibntrack.tracking.track.Track` view reports as its box once activated:
        #: ``"kalman"`` (the filtered estimate) or ``"detection"`` (the latest matched detection).
        self.box_source = "kalman"
        self.views: list[Any] = []

    def __len__(self) -> int:
        return self.state.shape[0]

    @property
    def emb_dim(self) -> int:
        """Embedding size ``E`` (0 until a detection with an embedding was added or matched)."""
        return self.emb.shape[1]

    # ------------------------------------------------------------------ adding and removing rows
    def append(
        self,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray,
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add ``K`` NEW tracks (no Kalman state yet) at the end.

        Args:
            boxes_xyxy: ``[K, 4]`` first detection boxes, xyxy pixels.
            scores: ``[K]`` confidences.
            classes: ``[K]`` 0-based classes.
            embeddings: ``[K, E]`` appearance embeddings (normalised here) or ``None``.

        Returns:
            ``[K]`` int64 row indices of the new tracks.
        """
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        k, n = boxes.shape[0], len(self)
        if embeddings is not None and np.shape(embeddings)[-1] > 0:
            curr = _unit_rows(np.asarray(embeddings, dtype=np.float32).reshape(k, -1))
            self._ensure_emb_dim(curr.shape[1])
            smooth, has_emb = _unit_rows(curr), np.ones(k, dtype=bool)
        else:
            curr = smooth = np.zeros((k, self.emb_dim), dtype=np.float32)
            has_emb = np.zeros(k, dtype=bool)
        new = {
            "det_boxes": boxes,
            "scores": np.asarray(scores, dtype=np.float64).reshape(k),
            "classes": np.asarray(classes, dtype=np.int64).reshape(k),
            "state": np.full(k, _NEW, dtype=np.int8),
            "activated": np.zeros(k, dtype=bool),
            "track_ids": np.zeros(k, dtype=np.int64),
            "tracklet_len": np.zeros(k, dtype=np.int64),
            "start_frame": np.zeros(k, dtype=np.int64),
            "frame_id": np.zeros(k, dtype=np.int64),
            "has_mean": np.zeros(k, dtype=bool),
            "means": np.zeros((k, _STATE_DIM)),
            "covs": np.zeros((k, _STATE_DIM, _STATE_DIM)),
            "has_emb": has_emb,
            "emb": smooth,
            "curr_emb": curr,
            "obs_boxes": boxes.copy(),
            "emb_count": has_emb.astype(np.int64),
            "emb_consistency": np.zeros(k),
        }
        for name in _FIELDS:
            setattr(self, name, np.concatenate([getattr(self, name), new[name]]))
        self.views.extend([None] * k)
        return np.arange(n, n + k)

    def compact(self) -> None:
        """Drop REMOVED rows (the others keep their order) and re-point the views.

        Views of removed rows are bound to a frozen table holding the arrays as they were, so a ``Track``
        kept by the caller still reads its last state.
        """
        keep = self.state != _REMOVED
        if keep.all():
            return
        removed = np.flatnonzero(~keep)
        if any(self.views[i] is not None for i in removed):
            frozen = TrackTable.__new__(TrackTable)
            frozen.__dict__.update(self.__dict__)  # shares the arrays: they are replaced, not changed, below
            frozen.views = []
            for i in removed:
                if self.views[i] is not None:
                    self.views[i]._bind(frozen, int(i))
        rows = np.flatnonzero(keep)
        for name in _FIELDS:
            setattr(self, name, getattr(self, name)[rows])
        self.views = [self.views[i] for i in rows]
        for row, view in enumerate(self.views):
            if view is not None:
                view._bind(self, row)

    # ------------------------------------------------------------------ life cycle (batched)
    def activate(
        self, kf: KalmanFilter, rows: np.ndarray, frame_id: int, track_ids: np.ndarray | None = None
    ) -> None:
        """Start the Kalman state of ``rows`` from their first detection; ``track_ids`` confirm at once."""
        self.means[rows], self.covs[rows] = kf.multi_initiate(xyxy_to_xyah(self.det_boxes[rows]))
        self.has_mean[rows] = True
        self.state[rows] = _TRACKED
        self.tracklet_len[rows] = 0
        self.start_frame[rows] = frame_id
        self.frame_id[rows] = frame_id
        if track_ids is not None:
            self.confirm(rows, track_ids)

    def confirm(self, rows: np.ndarray, track_ids: np.ndarray) -> None:
        """Give ``rows`` their identities (``>= 1``) and mark them activated (output from now on)."""
        ids = np.asarray(track_ids, dtype=np.int64)
        if ids.size and ids.min() < 1:
            raise ValueError(f"track_id must be >= 1, got {ids.min()!r}")
        self.track_ids[rows] = ids
        self.activated[rows] = True

    def mark_lost(self, rows: np.ndarray) -> None:
        """No detection matched ``rows`` this frame; they keep predicting and can be re-found."""
        self.state[rows] = _LOST

    def mark_removed(self, rows: np.ndarray) -> None:
        """End ``rows`` for good (:meth:`compact` drops them)."""
        self.state[rows] = _REMOVED

    def predict(self, kf: KalmanFilter, rows: np.ndarray | None = None) -> None:
        """Advance the Kalman state of ``rows`` (default: every row with one) by one frame.

        The height velocity of rows that are not TRACKED is zeroed first (ByteTrack), so a lost box does
        not keep growing or shrinking while unseen.
        """
        if rows is None and not self.has_mean.all():
            rows = np.flatnonzero(self.has_mean)
        if rows is None:  # every row: replace the arrays
            means = self.means
            not_tracked = self.state != _TRACKED
            if not_tracked.any():
                means = means.copy()
                means[not_tracked, _VH_INDEX] = 0.0
            self.means, self.covs = kf.multi_predict(means, self.covs)
            return
        means = self.means[rows]  # [K, 8] copy
        means[self.state[rows] != _TRACKED, _VH_INDEX] = 0.0
        self.means[rows], self.covs[rows] = kf.multi_predict(means, self.covs[rows])

    def update(
        self,
        kf: KalmanFilter,
        rows: np.ndarray,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        frame_id: int,
        embeddings: np.ndarray | None = None,
        reactivate: np.ndarray | bool | None = None,
        xyah: np.ndarray | None = None,
        emb_mask: np.ndarray | None = None,
        gap_velocity: int = 0,
        emb_unit: bool = False,
    ) -> None:
        """Correct ``rows`` (activated once) with their matched detections: row ``rows[i]`` with box ``i``.

        Args:
            kf: the motion model.
            rows: ``[K]`` row indices.
            boxes_xyxy: ``[K, 4]`` matched detection boxes, xyxy pixels.
            scores: ``[K]``.
            frame_id: current frame.
            embeddings: ``[K, E]`` or ``None`` (the smoothed embeddings are kept).
            reactivate: per row (or for all), restart the tracklet and mark it activated (a LOST track
                found again) instead of extending it; default: rows that are not TRACKED.
            xyah: ``[K, 4]`` the boxes as Kalman measurements, if already computed.
            emb_mask: ``[K]`` which rows take their embedding into the smoothed one (default: all); the
                others only record it as ``curr_emb``.
            emb_unit: the embeddings are unit rows already (not normalised again).
            gap_velocity: observation-centric re-update (OC-SORT), 0 = off: a row last observed at least
                this many frames ago gets the velocity of the straight line from its last observation to
                this one, instead of the velocity the filter extrapolated through the gap.
        """
        z = xyah if xyah is not None else xyxy_to_xyah(boxes_xyxy)
        means, covs = kf.multi_update(self.means[rows], self.covs[rows], z)
        if gap_velocity:
            gap = frame_id - self.frame_id[rows]  # [K] frames since the last observation
            back = np.flatnonzero(gap >= max(gap_velocity, 2))
            if back.size:
                last = xyxy_to_xyah(self.obs_boxes[rows[back]])  # [B, 4]
                vel = (z[back] - last) / gap[back, None]
                means[back, 4:6] = vel[:, :2]
                means[back, 7] = vel[:, 3]
                means[back, 6] = 0.0
        self.means[rows], self.covs[rows] = means, covs
        self.obs_boxes[rows] = boxes_xyxy
        if reactivate is None:
            reactivate = self.state[rows] != _TRACKED
        self.tracklet_len[rows] = np.where(reactivate, 0, self.tracklet_len[rows] + 1)
        self.activated[rows] |= reactivate
        self.state[rows] = _TRACKED
        self.frame_id[rows] = frame_id
        self.scores[rows] = scores
        if embeddings is not None and np.shape(embeddings)[-1] > 0:
            self._update_embeddings(rows, np.asarray(embeddings, dtype=np.float32), emb_mask, emb_unit)

    def warp(self, matrix: np.ndarray) -> None:
        """Move every track by a camera-motion affine ``x' = A x + t`` (``matrix [2, 3]`` = ``[A | t]``).

        Applied to the Kalman means (centre by ``A`` and ``t``, centre velocity by ``A``, height and its
        velocity by ``s = sqrt(|det A|)``, aspect ratio unchanged), the covariances (``P' = T P Tᵀ``
        with the same linear map ``T``) and the last observed boxes.
        """
        m = np.asarray(matrix, dtype=np.float64)
        a, t = m[:, :2], m[:, 2]
        s = float(np.sqrt(abs(np.linalg.det(a))))
        if len(self) == 0:
            return
        tmat = np.zeros((_STATE_DIM, _STATE_DIM))
        tmat[0:2, 0:2] = a
        tmat[4:6, 4:6] = a
        tmat[2, 2] = tmat[6, 6] = 1.0
        tmat[3, 3] = tmat[7, 7] = s
        has = self.has_mean
        self.means[has] = self.means[has] @ tmat.T
        self.means[has, 0:2] += t
        self.covs[has] = tmat @ self.covs[has] @ tmat.T
        corners = self.obs_boxes.astype(np.float64).reshape(-1, 2, 2)  # [T, 2 corners, xy]
        centre = corners.mean(axis=1) @ a.T + t  # [T, 2]
        half = 0.5 * (corners[:, 1] - corners[:, 0]) * s
        self.obs_boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)

    # ------------------------------------------------------------------ queries
    def boxes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``[K, 4]`` float64 xyxy boxes of the Kalman means of ``rows`` (default: every row)."""
        xyah = (self.means if rows is None else self.means[rows])[:, :4]  # [K, 4]
        half = np.empty((xyah.shape[0], 2))  # [K, 2] half width, half height
        half[:, 1] = 0.5 * xyah[:, 3]
        half[:, 0] = half[:, 1] * xyah[:, 2]
        return np.concatenate([xyah[:, :2] - half, xyah[:, :2] + half], axis=1)

    def areas(self) -> np.ndarray:
        """``[T]`` box areas ``a·h²`` (pixels²) of the Kalman means."""
        a, h = self.means[:, 2], self.means[:, 3]
        return a * h * h

    # ------------------------------------------------------------------ helpers
    def _ensure_emb_dim(self, dim: int) -> None:
        if dim == self.emb_dim:
            return
        if self.emb_dim and self.has_emb.any():
            raise ValueError(f"embeddings must have E = {self.emb_dim} columns like earlier ones, got {dim}")
        self.emb = np.zeros((len(self), dim), dtype=np.float32)
        self.curr_emb = np.zeros((len(self), dim), dtype=np.float32)

    def _update_embeddings(
        self, rows: np.ndarray, embeddings: np.ndarray, mask: np.ndarray | None = None, unit: bool = False
    ) -> None:
        """FairMOT feature smoothing of ``rows``: EMA of unit embeddings, renormalised.

        Only rows selected by ``mask`` (default: all) change their smoothed embedding; each of them also
        updates its consistency, an EMA of ``cos(smoothed before, new)``. ``unit``: the rows of
        ``embeddings`` are already unit vectors.
        """
        self._ensure_emb_dim(embeddings.shape[1])
        feats = embeddings if unit else _unit_rows(embeddings)  # [K, E]
        self.curr_emb[rows] = feats
        if mask is not None:
            rows, feats = rows[mask], feats[mask]
        if rows.size == 0:
            return
        old = self.emb[rows]
        smooth = self.ema_alpha * old + (1.0 - self.ema_alpha) * feats
        sim = np.einsum("ij,ij->i", old, feats)  # [K] cosine (both unit rows)
        # Running mean over the first comparisons, then an EMA: w = max(1 / comparisons, 1 − α).
        count = self.emb_count[rows]
        w = np.maximum(1.0 / np.maximum(count, 1), 1.0 - _CONSISTENCY_ALPHA)
        cons = (1.0 - w) * self.emb_consistency[rows] + w * sim
        fresh = count == 0  # no smoothed embedding yet: start from this one
        if fresh.any():
            smooth[fresh] = feats[fresh]
            cons[fresh] = 0.0
            self.has_emb[rows] = True
        self.emb_consistency[rows] = cons
        self.emb_count[rows] = count + 1
        self.emb[rows] = _unit_rows(smooth)
