"""Association settings: :class:`TrackerConfig`, every threshold of
:class:`~ibntrack.tracking.MultiObjectTracker` and of its association strategies
(:mod:`~ibntrack.tracking.gated`, :mod:`~ibntrack.tracking.fairmot`), one documented field each."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["ASSOCIATIONS", "AUTO_BOX_FPS", "OUTPUT_BOXES", "TrackerConfig"]

#: ``TrackerConfig.association`` values: the gated pipeline (default) or FairMOT's appearance-first one.
ASSOCIATIONS = ("gated", "fairmot")
#: ``TrackerConfig.output_box`` values: the Kalman estimate or the matched detection box.
OUTPUT_BOXES = ("kalman", "detection", "auto")
#: ``output_box="auto"`` reports detection boxes below this frame rate, Kalman estimates from it on.
AUTO_BOX_FPS = 20.0


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of :class:`MultiObjectTracker`. Costs are distances: a pair matches only below them.

    The flat form that checkpoints (``tracker``), YAML files and ``ibntrack tune`` store. Each field is read
    by the tracker itself or by one association strategy, which takes it as a documented argument
    (:class:`~ibntrack.tracking.gated.GatedAssociation`,
    :class:`~ibntrack.tracking.fairmot.FairMOTAssociation`; the other strategy's fields are ignored).

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
