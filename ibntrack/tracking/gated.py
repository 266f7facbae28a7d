"""The gated association (``TrackerConfig(association="gated")``, the default): motion first, appearance
where it has proven itself.

Steps 2–3 of :meth:`~ibntrack.tracking.MultiObjectTracker.update` (module docstring of
:mod:`ibntrack.tracking.tracker`): appearance alone for *reliable* tracks and *clean* detections inside the
Kalman gate; IoU with appearance fused BoT-SORT's way and vetoes; optionally buffered IoU (C-BIoU) and
OC-SORT's recovery by the last observed box; appearance again; the vetoed pairs again. Weak or random
embeddings never make a track reliable, so every use of appearance then does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ibntrack.tracking.association import Association
from ibntrack.tracking.frame import Frame
from ibntrack.tracking.kalman import CHI2INV95
from ibntrack.tracking.matching import iou_distance
from ibntrack.tracking.table import TrackState, TrackTable

__all__ = ["GatedAssociation"]

_TRACKED = TrackState.TRACKED.value


@dataclass(eq=False)
class GatedAssociation(Association):
    """Motion first, appearance where it has proven itself.

    Args:
        kalman, per_class: see :class:`~ibntrack.tracking.association.Association`.
        use_embeddings: use appearance at all (when the detections carry embeddings).
        fuse_score: weight IoU similarity by detection score (ByteTrack).
        match_thresh_iou: maximum ``1 − IoU`` of the IoU passes (a, d).
        proximity_thresh: appearance may lower a pair's cost only where ``1 − IoU`` is below this ...
        appearance_thresh: ... and ``(1 − cos)/2`` is below this; the pair then costs the smaller.
        veto_ratio: a reliable track refuses a clean detection whose cosine is below this × its
            consistency, until every other option is tried.
        reid_thresh: maximum ``1 − cos`` to match by appearance alone, inside the Kalman gate (c).
        emb_min_consistency: a track is *reliable* once its consistency reaches this ...
        emb_min_updates: ... after at least this many embeddings.
        emb_update_thresh: a detection is *clean* only if it scores at least this ...
        emb_max_cover: ... and at most this fraction of its box is covered by detections in front.
        appearance_first: run the appearance-alone step before the IoU passes too.
        buffered_iou: C-BIoU: match leftovers by the IoU of boxes grown by this fraction (0 = off) ...
        buffered_iou_thresh: ... up to this ``1 − IoU``.
        ocr_thresh: maximum ``1 − IoU`` with a track's last observed box (OC-SORT recovery, b; 0 = off).
        second_pass_lost: leave LOST tracks to the low-score pass (step 4) too.
    """

    name: ClassVar[str] = "gated"
    use_embeddings: bool
    fuse_score: bool
    match_thresh_iou: float
    proximity_thresh: float
    appearance_thresh: float
    veto_ratio: float
    reid_thresh: float
    emb_min_consistency: float
    emb_min_updates: int
    emb_update_thresh: float
    emb_max_cover: float
    appearance_first: bool
    buffered_iou: float
    buffered_iou_thresh: float
    ocr_thresh: float
    second_pass_lost: bool

    def prepare(self, table: TrackTable, dets: Frame) -> None:
        """Marks the clean detections and the reliable tracks of this frame (with embeddings only)."""
        if self.use_embeddings and dets.embeddings is not None:
            dets.clean = self._clean_detections(dets)
            dets.reliable = self._reliable_tracks(table)

    def match(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
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
        state = table.state
        appearance = dets.clean is not None
        if appearance and self.appearance_first and pool.size and high.size:
            pool, high = self._reidentify(table, dets, pool, high)
        if pool.size and high.size:
            cost = self.iou_cost(dets, pool, high, self.fuse_score)
            if appearance:
                cost, veto = self._fuse_appearance(table, dets, pool, high, cost)
            _, pool, high = self.assign(table, dets, pool, high, cost, self.match_thresh_iou)  # a
        if self.buffered_iou > 0 and pool.size and high.size:  # C-BIoU: small or fast boxes missed by IoU
            b = self.buffered_iou
            cost = iou_distance(_expand(dets.track_boxes[pool], b), _expand(dets.boxes[high], b))
            if appearance:
                cost, _ = self._fuse_appearance(table, dets, pool, high, cost, attract=False)
            _, pool, high = self.assign(table, dets, pool, high, cost, self.buffered_iou_thresh)
        if self.ocr_thresh > 0 and pool.size and high.size:
            cost = iou_distance(table.obs_boxes[pool], dets.boxes[high])
            if appearance:
                cost, _ = self._fuse_appearance(table, dets, pool, high, cost, attract=False)
            _, pool, high = self.assign(table, dets, pool, high, cost, self.ocr_thresh)  # b
        if appearance and pool.size and high.size:
            pool, high = self._reidentify(table, dets, pool, high)  # c
            if dets.vetoed and pool.size and high.size:
                cost = self.iou_cost(dets, pool, high, self.fuse_score)
                _, pool, high = self.assign(table, dets, pool, high, cost, self.match_thresh_iou)  # d
        if self.second_pass_lost:
            return pool, high
        return pool[state[pool] == _TRACKED], high

    def _similarity(self, table: TrackTable, dets: Frame) -> np.ndarray:
        """``[T, N]`` cosine of every track's smoothed embedding with every detection's (once per frame)."""
        if dets.sim_all is None:
            dets.sim_all = table.emb @ dets.embeddings.T
        return dets.sim_all

    def _clean_detections(self, dets: Frame) -> np.ndarray:
        """``[N]`` bool: confident detections not covered by detections in front (their embeddings count)."""
        clean = dets.scores >= self.emb_update_thresh
        if clean.size > 1 and clean.any():  # every detection may occlude (low scores too)
            clean &= _covered_fraction(dets.boxes) <= self.emb_max_cover
        return clean

    def _reliable_tracks(self, t: TrackTable) -> np.ndarray:
        """``[T]`` bool: tracks whose smoothed embedding has proven consistent."""
        return (
            t.has_emb
            & (t.emb_count >= self.emb_min_updates)
            & (t.emb_consistency >= self.emb_min_consistency)
        )

    def _fuse_appearance(
        self,
        table: TrackTable,
        dets: Frame,
        rows: np.ndarray,
        idx: np.ndarray,
        cost: np.ndarray,
        attract: bool = True,
    ) -> tuple[np.ndarray, bool]:
        """Appearance on an IoU cost ``[rows, idx]``: the gated minimum (if ``attract``) and the vetoes.

        Only reliable tracks take part; a veto also needs a clean detection. Returns the new cost and
        whether any pair was vetoed (so :meth:`match` knows whether step d has work).
        """
        rel = np.flatnonzero(dets.reliable[rows])
        if rel.size == 0:
            return cost, False
        sim = self._similarity(table, dets)[np.ix_(rows[rel], idx)]  # [R, M] cosine (unit rows)
        sub = cost[rel]
        if attract:
            app = 0.5 * (1.0 - sim)
            ok = (app <= self.appearance_thresh) & (sub <= self.proximity_thresh)
            sub = np.where(ok, np.minimum(sub, app), sub)
        veto = (sim < self.veto_ratio * table.emb_consistency[rows[rel]][:, None]) & dets.clean[idx][None, :]
        veto &= np.isfinite(sub)
        any_veto = bool(veto.any())
        if any_veto:
            sub = np.where(veto, np.inf, sub)
            dets.vetoed = True
        cost = cost.copy()
        cost[rel] = sub
        return cost, any_veto

    def _reidentify(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Appearance alone: reliable unmatched tracks and clean detections, inside the Kalman gate.

        Runs first (``appearance_first``, one global assignment over tracked and lost tracks: giving it
        only the lost ones lets them take detections from tracked tracks, which multiplied identity
        switches 2-5x on the benchmark) and again after the IoU passes (step c).
        """
        rows = pool[dets.reliable[pool]]
        idx = high[dets.clean[high]]
        if rows.size == 0 or idx.size == 0:
            return pool, high
        cost = 1.0 - self._similarity(table, dets)[np.ix_(rows, idx)]
        if dets.maha_all is None:  # every row against every detection, once per frame
            dets.maha_all = self.kalman.multi_gating_distance(table.means, table.covs, dets.xyah)
        maha = dets.maha_all[np.ix_(rows, idx)]
        cost[maha > CHI2INV95[4]] = np.inf
        matches, _, _ = self.assign(table, dets, rows, idx, cost, self.reid_thresh)
        if matches.shape[0] == 0:
            return pool, high
        done_rows = np.zeros(len(table), dtype=bool)
        done_rows[rows[matches[:, 0]]] = True
        done_dets = np.zeros(len(dets.scores), dtype=bool)
        done_dets[idx[matches[:, 1]]] = True
        return pool[~done_rows[pool]], high[~done_dets[high]]


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
