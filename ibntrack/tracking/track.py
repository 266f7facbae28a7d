"""One tracked target: a view of one row of a :class:`~ibntrack.tracking.table.TrackTable`.

Life cycle (driven by :class:`ibntrack.tracking.tracker.MultiObjectTracker`, but changed only by the
methods below and their batched forms on the table)::

    NEW --activate--> TRACKED (unconfirmed) --update+confirm--> TRACKED (confirmed, has an ID)
    TRACKED --mark_lost--> LOST --re_activate--> TRACKED
    any --mark_removed--> REMOVED (final)

A ``Track`` made by its constructor owns a one-row table; the tracker's tracks are views of the rows of
the tracker's table (its Kalman means, covariances and embeddings are ``[T, 8]``, ``[T, 8, 8]`` and
``[T, E]`` arrays). Attributes read the row when accessed, so they always show the current state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.table import TrackState, TrackTable

__all__ = ["Track", "TrackState"]

_STATES = tuple(TrackState)  # value -> member (values are 0, 1, 2, 3)


class Track:
    """A target followed over frames.

    Args:
        box_xyxy: ``[4]`` first detection box, xyxy pixels.
        score: detection confidence in ``[0, 1]``.
        cls: 0-based class; a track never changes class.
        embedding: ``[E]`` appearance embedding of the first detection, or ``None``.
        ema_alpha: weight of the past in the embedding EMA, ``smooth = α·smooth + (1 − α)·new``
            (then renormalised; FairMOT uses 0.9).

    Attributes (read-only; the methods change them):
        track_id: 1-based identity given by the tracker when the track is confirmed; 0 before.
        score: confidence of the latest matched detection.
        cls: class index.
        state: :class:`TrackState`.
        is_activated: confirmed (matched in two consecutive frames, or born in the first frame).
        tracklet_len: matched frames since (re)activation.
        start_frame: frame of the first detection.
        frame_id: frame of the latest matched detection.
        mean: ``[8]`` Kalman mean ``(cx, cy, a, h, vcx, vcy, va, vh)`` or ``None`` before activation (a view
            of the table row: writing to it changes the track).
        covariance: ``[8, 8]`` or ``None`` (a view, like ``mean``).
        embedding: ``[E]`` smoothed unit embedding, or ``None`` if no detection carried one.
        curr_embedding: ``[E]`` unit embedding of the latest detection that carried one.
    """

    __slots__ = ("_row", "_table")

    def __init__(
        self,
        box_xyxy: np.ndarray,
        score: float,
        cls: int = 0,
        embedding: np.ndarray | None = None,
        ema_alpha: float = 0.9,
    ) -> None:
        table = TrackTable(ema_alpha)
        if embedding is not None:
            embedding = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        table.append(np.asarray(box_xyxy, dtype=np.float32).reshape(1, 4), [score], [cls], embedding)
        table.views[0] = self
        self._bind(table, 0)

    @classmethod
    def of(cls, table: TrackTable, row: int) -> Track:
        """The view of ``table`` row ``row`` (made on first request, then the same object)."""
        view = table.views[row]
        if view is None:
            view = cls.__new__(cls)
            view._bind(table, row)
            table.views[row] = view
        return view

    def _bind(self, table: TrackTable, row: int) -> None:
        """Point this view at ``table`` row ``row`` (the table calls it when rows move)."""
        self._table = table
        self._row = row

    def _rows(self) -> np.ndarray:
        return np.array([self._row])

    # ------------------------------------------------------------------ views
    @property
    def track_id(self) -> int:
        return int(self._table.track_ids[self._row])

    @property
    def score(self) -> float:
        return float(self._table.scores[self._row])

    @property
    def cls(self) -> int:
        return int(self._table.classes[self._row])

    @property
    def state(self) -> TrackState:
        return _STATES[self._table.state[self._row]]

    @property
    def is_activated(self) -> bool:
        return bool(self._table.activated[self._row])

    @property
    def tracklet_len(self) -> int:
        return int(self._table.tracklet_len[self._row])

    @property
    def start_frame(self) -> int:
        return int(self._table.start_frame[self._row])

    @property
    def frame_id(self) -> int:
        return int(self._table.frame_id[self._row])

    @property
    def ema_alpha(self) -> float:
        return self._table.ema_alpha

    @property
    def mean(self) -> np.ndarray | None:
        return self._table.means[self._row] if self._table.has_mean[self._row] else None

    @property
    def covariance(self) -> np.ndarray | None:
        return self._table.covs[self._row] if self._table.has_mean[self._row] else None

    @property
    def embedding(self) -> np.ndarray | None:
        return self._table.emb[self._row] if self._table.has_emb[self._row] else None

    @property
    def curr_embedding(self) -> np.ndarray | None:
        return self._table.curr_emb[self._row] if self._table.has_emb[self._row] else None

    @property
    def box(self) -> np.ndarray:
        """``[4]`` float32 xyxy pixels: the Kalman estimate (the detection box before activation).

        With the table's ``box_source == "detection"`` (``TrackerConfig(output_box="detection")``), the
        latest matched detection box instead.
        """
        if not self._table.has_mean[self._row]:
            return self._table.det_boxes[self._row].copy()
        if self._table.box_source == "detection":
            return self._table.obs_boxes[self._row].copy()
        cx, cy, a, h = self._table.means[self._row, :4].tolist()
        half_w, half_h = 0.5 * a * h, 0.5 * h
        return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dtype=np.float32)

    @property
    def area(self) -> float:
        """Box area in pixels² (``w·h = a·h²``)."""
        if not self._table.has_mean[self._row]:
            x1, y1, x2, y2 = self._table.det_boxes[self._row].tolist()
            return (x2 - x1) * (y2 - y1)
        a, h = self._table.means[self._row, 2:4].tolist()
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
        ids = None if track_id is None else np.array([track_id])
        self._table.activate(kf, self._rows(), int(frame_id), ids)

    def confirm(self, track_id: int) -> None:
        """Give the track its identity and mark it activated (output from now on)."""
        self._table.confirm(self._rows(), np.array([track_id]))

    def update(
        self,
        kf: KalmanFilter,
        box_xyxy: np.ndarray,
        score: float,
        frame_id: int,
        embedding: np.ndarray | None = None,
    ) -> None:
        """Correct a TRACKED track with its matched detection of this frame."""
        self._correct(kf, box_xyxy, score, frame_id, embedding, reactivate=False)

    def re_activate(
        self,
        kf: KalmanFilter,
        box_xyxy: np.ndarray,
        score: float,
        frame_id: int,
        embedding: np.ndarray | None = None,
    ) -> None:
        """Bring a LOST track back with its matched detection; it keeps its identity."""
        self._correct(kf, box_xyxy, score, frame_id, embedding, reactivate=True)

    def mark_lost(self) -> None:
        """No detection matched this frame; keep predicting and try to re-find it."""
        self._table.mark_lost(self._rows())

    def mark_removed(self) -> None:
        """End the track for good."""
        self._table.mark_removed(self._rows())

    @staticmethod
    def multi_predict(kf: KalmanFilter, tracks: Sequence[Track]) -> None:
        """Advance the Kalman state of ``tracks`` by one frame, one vectorised prediction per table.

        The height velocity of tracks that are not TRACKED is zeroed first (ByteTrack), so a lost box
        does not keep growing or shrinking while unseen. Tracks not activated yet are skipped.
        """
        for table, _, rows in _by_table(tracks):
            rows = rows[table.has_mean[rows]]
            if rows.size:
                table.predict(kf, rows)

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
        boxes = np.asarray(boxes_xyxy).reshape(-1, 4)
        scores = np.asarray(scores).reshape(-1)
        for table, idx, rows in _by_table(tracks):
            _require_mean(table, rows)
            emb = None if embeddings is None else np.asarray(embeddings)[idx]
            table.update(kf, rows, boxes[idx], scores[idx], int(frame_id), emb)

    # ------------------------------------------------------------------ helpers
    def _correct(
        self,
        kf: KalmanFilter,
        box_xyxy: np.ndarray,
        score: float,
        frame_id: int,
        embedding: np.ndarray | None,
        reactivate: bool,
    ) -> None:
        rows = self._rows()
        _require_mean(self._table, rows)
        emb = None if embedding is None else np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        box = np.asarray(box_xyxy, dtype=np.float64).reshape(1, 4)
        self._table.update(kf, rows, box, np.array([score]), int(frame_id), emb, reactivate=reactivate)


def _require_mean(table: TrackTable, rows: np.ndarray) -> None:
    if not table.has_mean[rows].all():
        raise ValueError("track must be activated before it is updated")


def _by_table(tracks: Sequence[Track]) -> list[tuple[TrackTable, np.ndarray, np.ndarray]]:
    """Group ``tracks`` by table: ``(table, positions in tracks [K], rows [K])`` per table."""
    groups: dict[int, tuple[TrackTable, list[int], list[int]]] = {}
    for i, track in enumerate(tracks):
        entry = groups.setdefault(id(track._table), (track._table, [], []))
        entry[1].append(i)
        entry[2].append(track._row)
    return [(table, np.array(idx), np.array(rows, dtype=np.int64)) for table, idx, rows in groups.values()]
