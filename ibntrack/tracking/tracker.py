"""Multi-object tracker (the tracking module): motion first, appearance where it has proven itself.

``MultiObjectTracker.update`` takes one frame's detections (numpy, xyxy pixels) and runs these steps
(``TrackerConfig(association="gated")``, the default):

1. predict every tracked and lost track one frame ahead (vectorised Kalman prediction; process noise
   scaled to the frame rate), then apply the camera-motion ``warp`` if one is given;
2. appearance first, where it can be trusted: *reliable* tracks (whose smoothed embedding has agreed
   with the embeddings that entered it: consistency ≥ ``emb_min_consistency``) and *clean* detections
   (confident, not covered by a detection in front) are matched by cosine distance inside the Kalman
   gate (``1 − cos <= reid_thresh``); weak or random embeddings never make a track reliable, so this
   step and every other use of appearance then do nothing and the tracker is the motion-only one;
3. IoU with the predicted boxes, tracked and lost tracks together (ByteTrack's first association), with
   appearance fused BoT-SORT's way: a reliable track and a similar detection (``(1 − cos)/2 <=
   appearance_thresh``) that already overlap (``1 − IoU <= proximity_thresh``) cost the smaller of the
   two distances; a reliable track refuses a clean detection that does not look like it (a *veto*) until
   appearance alone (again, inside the gate) and then the IoU pass without vetoes have had their turn;
   optionally OC-SORT's recovery by the last observed box (``ocr_thresh``);
4. low-score detections by IoU with tracked *and* lost tracks (ByteTrack's second pass, extended: a
   target coming out of an occlusion is first seen with a low score); the tracked tracks left become LOST;
5. unconfirmed tracks (born last frame) with the remaining high-score detections by IoU: matched ones are
   confirmed and get an ID, the others are removed; then every track matched in steps 2–5 is corrected
   with its detection in one batch (Kalman update; the embedding EMA only from clean detections; a step
   never reads the state of a track that an earlier step matched, so deferring the corrections changes
   nothing);
6. start unconfirmed tracks from the remaining high-score detections scoring at least ``new_track_thresh``
   (confirmed at once in the first frame);
7. remove lost tracks unseen for ``max_time_lost`` frames (the buffer; see ``_remove_expired``).

``association="fairmot"`` keeps the earlier pipeline: cosine distance fused with the Mahalanobis distance
first (all tracks, all detections), then IoU for tracked tracks only — strong with clean embeddings, far
worse than motion alone with weak ones (see ``docs/BENCHMARKS.md``).

Steps 2–3 are the association strategy's, one class per strategy sharing the tracker's table
(:data:`STRATEGIES`: :class:`~ibntrack.tracking.gated.GatedAssociation`,
:class:`~ibntrack.tracking.fairmot.FairMOTAssociation`); the tracker runs the other steps. A
``supervision.Detections`` goes through :func:`ibntrack.interop.supervision.update_with_detections`.

Track IDs come from a counter owned by the tracker instance; :meth:`MultiObjectTracker.reset` restarts it.
The tracks' state lives in one :class:`~ibntrack.tracking.table.TrackTable` (arrays over tracks), so each
step is a few vectorised operations on row indices; the :class:`Track` objects returned are views of rows.
"""

from __future__ import annotations

import numpy as np

from ibntrack.tracking.association import Association
from ibntrack.tracking.config import AUTO_BOX_FPS, TrackerConfig
from ibntrack.tracking.fairmot import FairMOTAssociation
from ibntrack.tracking.frame import Frame, validate_detections, validate_warp
from ibntrack.tracking.gated import GatedAssociation
from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.table import TrackState, TrackTable
from ibntrack.tracking.track import Track

__all__ = ["MultiObjectTracker", "STRATEGIES", "TrackerConfig"]

_REFERENCE_FPS = 30.0  # track_buffer is given in frames at this frame rate
_TRACKED, _LOST = TrackState.TRACKED.value, TrackState.LOST.value

STRATEGIES: dict[str, type[Association]] = {"gated": GatedAssociation, "fairmot": FairMOTAssociation}
"""``TrackerConfig.association`` → the class that runs steps 2–3."""


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
        if kalman is None and self.config.frame_rate_noise:
            kalman = KalmanFilter.for_frame_rate(self.frame_rate)
        self.kalman = kalman if kalman is not None else KalmanFilter()
        #: Steps 2-3: the strategy ``config.association`` names (:data:`STRATEGIES`).
        self.association = STRATEGIES[self.config.association].from_config(self.config, self.kalman)
        self._table = self._new_table()
        self._frame_id = 0
        self._last_id = 0

    def _new_table(self) -> TrackTable:
        table = TrackTable(self.config.ema_alpha)
        box = self.config.output_box
        if box == "auto":
            box = "detection" if self.frame_rate < AUTO_BOX_FPS else "kalman"
        table.box_source = box
        return table

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
        self._table = self._new_table()
        self._frame_id = 0
        self._last_id = 0

    # ------------------------------------------------------------------ main entry
    def update(
        self,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        embeddings: np.ndarray | None = None,
        classes: np.ndarray | None = None,
        warp: np.ndarray | None = None,
    ) -> list[Track]:
        """Advance one frame.

        Args:
            boxes_xyxy: ``[N, 4]`` detection boxes, xyxy, original-image pixels (``x2 >= x1``,
                ``y2 >= y1``, finite).
            scores: ``[N]`` confidences in ``[0, 1]``.
            embeddings: ``[N, E]`` appearance embeddings (normalised here; no zero rows; ``E`` as in
                earlier frames), or ``None`` / ``E = 0``.
            classes: ``[N]`` 0-based integer classes, or ``None`` (all 0).
            warp: camera motion from the previous frame to this one, a ``[2, 3]`` affine ``[A | t]``
                mapping previous-frame pixels to this frame's (a ``[3, 3]`` matrix with last row
                ``0 0 1`` is accepted), or ``None``. Applied to every track's predicted Kalman mean and
                covariance (:meth:`TrackTable.warp`) before association — camera-motion compensation
                with your own estimator or :class:`ibntrack.tracking.gmc.GMC`.

        Returns:
            The confirmed tracks matched in this frame (state TRACKED) whose box area is at least
            ``min_box_area``. They are live views of the tracker's state: read them before the next
            ``update``.
        """
        dets = validate_detections(self._table, boxes_xyxy, scores, embeddings, classes)
        warp_matrix = validate_warp(warp)
        self._frame_id += 1
        table = self._table
        cfg = self.config
        high = np.flatnonzero(dets.scores >= cfg.det_thresh)
        low = np.flatnonzero((dets.scores >= cfg.low_thresh) & (dets.scores < cfg.det_thresh))
        tracked = table.state == _TRACKED
        unconfirmed = np.flatnonzero(tracked & ~table.activated)
        pool = np.flatnonzero(table.activated & (tracked | (table.state == _LOST)))  # rows, creation order

        table.predict(self.kalman)  # 1: every row is TRACKED or LOST here
        if warp_matrix is not None:
            table.warp(warp_matrix)
        dets.track_boxes = table.boxes()  # predicted; steps 2-5 read only tracks they have not matched
        self.association.prepare(table, dets)
        pool, high = self.association.match(table, dets, pool, high)  # 2-3
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

    def _match_low_scores(self, pool: np.ndarray, dets: Frame, low: np.ndarray) -> None:
        """Step 4: ByteTrack's second pass; tracked tracks still unmatched afterwards become LOST."""
        match = self.association
        cost = match.iou_cost(dets, pool, low, fuse=False)
        _, rest, _ = match.assign(self._table, dets, pool, low, cost, self.config.second_match_thresh)
        self._table.mark_lost(rest[self._table.state[rest] == _TRACKED])

    def _match_unconfirmed(self, unconfirmed: np.ndarray, dets: Frame, high: np.ndarray) -> np.ndarray:
        """Step 5: confirm tracks born last frame that match again; remove the others."""
        match = self.association
        cost = match.iou_cost(dets, unconfirmed, high, self.config.fuse_score)
        thresh = self.config.unconfirmed_match_thresh
        matches, rest, high = match.assign(self._table, dets, unconfirmed, high, cost, thresh)
        self._table.confirm(unconfirmed[matches[:, 0]], self._next_ids(matches.shape[0]))
        self._table.mark_removed(rest)
        return high

    def _start_tracks(self, dets: Frame, high: np.ndarray) -> None:
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

    def _correct_matched(self, dets: Frame) -> None:
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
            emb_mask=None if dets.clean is None else dets.clean[j],
            gap_velocity=self.config.oru,
            emb_unit=True,
        )
