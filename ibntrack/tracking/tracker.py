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

Track IDs come from a counter owned by the tracker instance; :meth:`MultiObjectTracker.reset` restarts it.
The tracks' state lives in one :class:`~ibntrack.tracking.table.TrackTable` (arrays over tracks), so each
step is a few vectorised operations on row indices; the :class:`Track` objects returned are views of rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ibntrack.tracking.kalman import CHI2INV95, KalmanFilter, xyxy_to_xyah
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
#: ``TrackerConfig.association`` values: the gated pipeline (default) or FairMOT's appearance-first one.
ASSOCIATIONS = ("gated", "fairmot")
#: ``TrackerConfig.output_box`` values: the Kalman estimate or the matched detection box.
OUTPUT_BOXES = ("kalman", "detection", "auto")
#: ``output_box="auto"`` reports detection boxes below this frame rate, Kalman estimates from it on.
AUTO_BOX_FPS = 20.0
_TRACKED, _LOST = TrackState.TRACKED.value, TrackState.LOST.value
_MAX_COORD = 1e6  # pixels: no camera frame is a million pixels wide


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
        association: ``"gated"`` (default; the pipeline of the module docstring, where appearance only
            confirms, vetoes or re-finds motion-plausible pairs) or ``"fairmot"`` (the earlier
            appearance-first pipeline: cosine fused with Mahalanobis distance first, then IoU).
        proximity_thresh: gated: appearance may lower the cost of a pair only where ``1 − IoU`` is below
            this (BoT-SORT's 0.5).
        appearance_thresh: gated: ... and where ``(1 − cos)/2`` is below this (BoT-SORT's 0.25, i.e.
            cosine ≥ 0.5); the pair then costs ``min(1 − IoU, (1 − cos)/2)``.
        veto_ratio: gated: a reliable track refuses (until every other option is tried) a clean
            detection whose cosine with it is below ``veto_ratio ×`` the track's consistency.
        reid_thresh: gated: maximum ``1 − cos`` to re-find an unmatched track by appearance alone (inside
            the Kalman gate), after the IoU passes.
        emb_min_consistency: a track's appearance is *reliable* once its consistency (EMA of the cosine
            between its smoothed embedding and the embeddings that entered it) reaches this ...
        emb_min_updates: ... after at least this many embeddings. Weak embeddings never become reliable,
            so they cannot change a match: the tracker falls back to motion.
        emb_update_thresh: a detection is *clean* (its embedding may enter the smoothed one, veto or
            re-find) only if it scores at least this ...
        emb_max_cover: ... and at most this fraction of its box is covered by detections in front of it
            (larger bottom edge).
        buffered_iou: gated: after the first IoU pass, match the leftovers by the IoU of boxes grown by
            this fraction of their size on every side (C-BIoU), up to ``buffered_iou_thresh``; 0 (default)
            is off: on the benchmark it helped small boxes under a shaking camera (+3.8 HOTA) and cost
            2.5-3.1 HOTA in crowds and at 10 fps.
        buffered_iou_thresh: maximum ``1 − IoU`` of the buffered boxes.
        appearance_first: gated: before the IoU passes, match reliable tracks to clean detections by
            appearance alone inside the Kalman gate (``1 − cos <= reid_thresh``; FairMOT's order, but
            only where appearance has proven itself). −0.1 to +0.9 HOTA with clean embeddings on the
            benchmark's sets; it never runs for weak embeddings (no reliable track).
        second_pass_lost: step 4 (low-score detections) also re-finds LOST tracks by IoU with their
            extrapolated boxes, not only TRACKED ones (ByteTrack's rule): a target coming out of an
            occlusion is first detected with a low score. +0.3-2.1 HOTA without embeddings.
        ocr_thresh: gated: maximum ``1 − IoU`` between a still unmatched track's last observed box and a
            detection (OC-SORT's observation-centric recovery); 0 (default) turns the step off — it
            moved HOTA by at most ±0.3 on the benchmark's sets and costs time every frame.
        oru: on re-finding a track unseen for at least this many frames (0 = never), set its velocity from
            the straight line between the two observations (OC-SORT's observation-centric re-update)
            instead of the extrapolated one.
        frame_rate_noise: without an explicit ``kalman``, scale the process noise by ``30 / frame_rate``
            (:meth:`KalmanFilter.for_frame_rate`): at 10 fps a target moves and turns three times as much
            between frames as at 30.
        output_box: the box of an output track: ``"kalman"`` (the filtered estimate, default) or
            ``"detection"`` (the detection matched this frame).
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
    association: str = "gated"
    proximity_thresh: float = 0.5
    appearance_thresh: float = 0.25
    veto_ratio: float = 0.35
    reid_thresh: float = 0.3
    emb_min_consistency: float = 0.6
    emb_min_updates: int = 3
    emb_update_thresh: float = 0.6
    emb_max_cover: float = 0.3
    ocr_thresh: float = 0.0
    appearance_first: bool = True
    buffered_iou: float = 0.0
    buffered_iou_thresh: float = 0.8
    second_pass_lost: bool = True
    oru: int = 0
    frame_rate_noise: bool = True
    output_box: str = "auto"

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
        for name in (
            "use_embeddings",
            "per_class",
            "gating",
            "fuse_score",
            "frame_rate_noise",
            "appearance_first",
            "second_pass_lost",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in (
            "proximity_thresh",
            "appearance_thresh",
            "veto_ratio",
            "reid_thresh",
            "emb_min_consistency",
            "emb_update_thresh",
            "emb_max_cover",
            "ocr_thresh",
            "buffered_iou",
            "buffered_iou_thresh",
        ):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        if isinstance(self.oru, bool) or not isinstance(self.oru, int) or self.oru < 0:
            raise ValueError(f"oru must be an int >= 0 (0 = off), got {self.oru!r}")
        if (
            isinstance(self.emb_min_updates, bool)
            or not isinstance(self.emb_min_updates, int)
            or self.emb_min_updates < 1
        ):
            raise ValueError(f"emb_min_updates must be an int >= 1, got {self.emb_min_updates!r}")
        if self.association not in ASSOCIATIONS:
            raise ValueError(f"association must be one of {ASSOCIATIONS}, got {self.association!r}")
        if self.output_box not in OUTPUT_BOXES:
            raise ValueError(f"output_box must be one of {OUTPUT_BOXES}, got {self.output_box!r}")

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
    clean: np.ndarray | None = None  # [N] bool, gated pipeline with embeddings: embedding trustworthy
    reliable: np.ndarray | None = None  # [T] bool, gated pipeline with embeddings: track appearance proven
    vetoed: bool = False  # some pair was vetoed by appearance this frame
    iou_all: np.ndarray | None = None  # [T, N] 1 − IoU of predicted boxes, computed on first use
    one_class: bool | None = None  # every detection and track has the same class (set on first use)
    sim_all: np.ndarray | None = None  # [T, N] cosine of smoothed track and detection embeddings
    maha_all: np.ndarray | None = None  # [T, N] squared Mahalanobis distances (predicted, warped)


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
        dets = self._validate(boxes_xyxy, scores, embeddings, classes)
        warp_matrix = _validate_warp(warp)
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
        appearance = cfg.use_embeddings and dets.embeddings is not None
        if cfg.association == "fairmot":
            if appearance:
                pool, high = self._match_appearance(pool, dets, high)  # 2
            pool, high = self._match_iou(pool, dets, high, after_appearance=appearance)  # 3
        else:
            if appearance:
                dets.clean = self._clean_detections(dets)
                dets.reliable = self._reliable_tracks()
            pool, high = self._match_gated(pool, dets, high)  # 2-3
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

    # ------------------------------------------------------------------ steps (gated)
    def _match_gated(self, pool: np.ndarray, dets: _Frame, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steps 2-3 of the gated pipeline; returns the unmatched TRACKED rows and high detections.

        a. IoU of predicted boxes, tracked and lost tracks together (ByteTrack's first association), with
           appearance fused BoT-SORT's way (a clean, similar pair may cost ``(1 − cos)/2`` instead of
           ``1 − IoU``) and vetoed pairs (a reliable track, a clean detection that does not look like it)
           left out;
        b. IoU of the last *observed* boxes (OC-SORT's recovery: a target that stopped or turned while
           unseen is where it was last seen, not where the filter extrapolated it), same vetoes;
        c. appearance alone, inside the Kalman gate: reliable tracks, clean detections, ``1 − cos <=
           reid_thresh``;
        d. the vetoed pairs again (appearance reorders, it never leaves a detection without the track
           motion gives it).
        """
        cfg = self.config
        state = self._table.state
        appearance = dets.clean is not None
        if appearance and cfg.appearance_first and pool.size and high.size:
            pool, high = self._reidentify(pool, dets, high)
        if pool.size and high.size:
            cost = self._iou_cost(pool, dets, high, cfg.fuse_score)
            if appearance:
                cost, veto = self._fuse_appearance(pool, dets, high, cost)
            pool, high = self._assign(pool, dets, high, cost, cfg.match_thresh_iou)  # a
        if cfg.buffered_iou > 0 and pool.size and high.size:  # C-BIoU: small or fast boxes missed by IoU
            b = cfg.buffered_iou
            cost = iou_distance(_expand(dets.track_boxes[pool], b), _expand(dets.boxes[high], b))
            if appearance:
                cost, _ = self._fuse_appearance(pool, dets, high, cost, attract=False)
            pool, high = self._assign(pool, dets, high, cost, cfg.buffered_iou_thresh)
        if cfg.ocr_thresh > 0 and pool.size and high.size:
            cost = iou_distance(self._table.obs_boxes[pool], dets.boxes[high])
            if appearance:
                cost, _ = self._fuse_appearance(pool, dets, high, cost, attract=False)
            pool, high = self._assign(pool, dets, high, cost, cfg.ocr_thresh)  # b
        if appearance and pool.size and high.size:
            pool, high = self._reidentify(pool, dets, high)  # c
            if dets.vetoed and pool.size and high.size:
                cost = self._iou_cost(pool, dets, high, cfg.fuse_score)
                pool, high = self._assign(pool, dets, high, cost, cfg.match_thresh_iou)  # d
        if self.config.second_pass_lost:
            return pool, high
        return pool[state[pool] == _TRACKED], high

    def _similarity(self, dets: _Frame) -> np.ndarray:
        """``[T, N]`` cosine of every track's smoothed embedding with every detection's (once per frame)."""
        if dets.sim_all is None:
            dets.sim_all = self._table.emb @ dets.embeddings.T
        return dets.sim_all

    def _clean_detections(self, dets: _Frame) -> np.ndarray:
        """``[N]`` bool: confident detections not covered by detections in front (their embeddings count)."""
        cfg = self.config
        clean = dets.scores >= cfg.emb_update_thresh
        if clean.size > 1 and clean.any():  # every detection may occlude (low scores too)
            clean &= _covered_fraction(dets.boxes) <= cfg.emb_max_cover
        return clean

    def _reliable_tracks(self) -> np.ndarray:
        """``[T]`` bool: tracks whose smoothed embedding has proven consistent."""
        t = self._table
        return (
            t.has_emb
            & (t.emb_count >= self.config.emb_min_updates)
            & (t.emb_consistency >= self.config.emb_min_consistency)
        )

    def _fuse_appearance(
        self, rows: np.ndarray, dets: _Frame, idx: np.ndarray, cost: np.ndarray, attract: bool = True
    ) -> tuple[np.ndarray, bool]:
        """Appearance on an IoU cost ``[rows, idx]``: the gated minimum (if ``attract``) and the vetoes.

        Only reliable tracks take part; a veto also needs a clean detection. Returns the new cost and
        whether any pair was vetoed (so :meth:`_match_gated` knows whether step d has work).
        """
        cfg = self.config
        rel = np.flatnonzero(dets.reliable[rows])
        if rel.size == 0:
            return cost, False
        table = self._table
        sim = self._similarity(dets)[np.ix_(rows[rel], idx)]  # [R, M] cosine (unit rows)
        sub = cost[rel]
        if attract:
            app = 0.5 * (1.0 - sim)
            ok = (app <= cfg.appearance_thresh) & (sub <= cfg.proximity_thresh)
            sub = np.where(ok, np.minimum(sub, app), sub)
        veto = (sim < cfg.veto_ratio * table.emb_consistency[rows[rel]][:, None]) & dets.clean[idx][None, :]
        veto &= np.isfinite(sub)
        any_veto = bool(veto.any())
        if any_veto:
            sub = np.where(veto, np.inf, sub)
            dets.vetoed = True
        cost = cost.copy()
        cost[rel] = sub
        return cost, any_veto

    def _reidentify(self, pool: np.ndarray, dets: _Frame, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Appearance alone: reliable unmatched tracks and clean detections, inside the Kalman gate.

        Runs first (``appearance_first``, one global assignment over tracked and lost tracks: giving it
        only the lost ones lets them take detections from tracked tracks, which multiplied identity
        switches 2-5x on the benchmark) and again after the IoU passes (step c).
        """
        rows = pool[dets.reliable[pool]]
        idx = high[dets.clean[high]]
        if rows.size == 0 or idx.size == 0:
            return pool, high
        table = self._table
        cost = 1.0 - self._similarity(dets)[np.ix_(rows, idx)]
        if dets.maha_all is None:  # every row against every detection, once per frame
            dets.maha_all = self.kalman.multi_gating_distance(table.means, table.covs, dets.xyah)
        maha = dets.maha_all[np.ix_(rows, idx)]
        cost[maha > CHI2INV95[4]] = np.inf
        matches, _, _ = linear_assignment(self._class_gate(rows, dets, idx, cost), self.config.reid_thresh)
        if matches.shape[0] == 0:
            return pool, high
        self._record_matches(rows, dets, idx, matches)
        done_rows = np.zeros(len(table), dtype=bool)
        done_rows[rows[matches[:, 0]]] = True
        done_dets = np.zeros(len(dets.scores), dtype=bool)
        done_dets[idx[matches[:, 1]]] = True
        return pool[~done_rows[pool]], high[~done_dets[high]]

    # ------------------------------------------------------------------ steps (FairMOT)
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
        self._table.mark_lost(rest[self._table.state[rest] == _TRACKED])

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
        if dets.iou_all is None:  # every row against every detection, once per frame (steps slice it)
            dets.iou_all = iou_distance(dets.track_boxes, dets.boxes)
        cost = dets.iou_all[np.ix_(rows, idx)]
        if fuse:
            cost = fuse_score(cost, dets.scores[idx])
        return cost

    def _class_gate(self, rows: np.ndarray, dets: _Frame, idx: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """With ``per_class``, forbid (``inf``) every pair whose track and detection classes differ."""
        if not self.config.per_class or cost.size == 0:
            return cost
        if dets.one_class is None:  # once per frame: one class among all detections and tracks
            c, t = dets.classes, self._table.classes
            dets.one_class = bool(c.size == 0 or ((c == c[0]).all() and (t == c[0]).all()))
        if dets.one_class:
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
            emb_mask=None if dets.clean is None else dets.clean[j],
            gap_velocity=self.config.oru,
            emb_unit=True,
        )

    def _validate(
        self,
        boxes_xyxy: np.ndarray,
        scores: np.ndarray,
        embeddings: np.ndarray | None,
        classes: np.ndarray | None,
    ) -> _Frame:
        table = self._table
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
                raise ValueError(
                    f"boxes_xyxy must have x2 >= x1 and y2 >= y1 (xyxy), row {bad} is {boxes[bad]}"
                )
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
        return _Frame(boxes=boxes, scores=scores, embeddings=emb, classes=cls, xyah=xyxy_to_xyah(boxes))


def _validate_warp(warp: np.ndarray | None) -> np.ndarray | None:
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


def _covered_fraction(boxes: np.ndarray) -> np.ndarray:
    """``[N]`` fraction of each box covered by the boxes in front of it (larger ``y2``), at most 1."""
    b = boxes.astype(np.float64)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # [N, N]
    inter[b[None, :, 3] <= b[:, None, 3]] = 0.0  # only boxes in front
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    return np.minimum(inter.sum(axis=1) / area, 1.0)


def _expand(boxes: np.ndarray, ratio: float) -> np.ndarray:
    """``[K, 4]`` xyxy boxes grown by ``ratio`` of their width / height on every side (C-BIoU's buffer)."""
    b = np.asarray(boxes, dtype=np.float64)
    pad = ratio * (b[:, 2:] - b[:, :2])
    return np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1)
