"""FairMOT's association (``TrackerConfig(association="fairmot")``): appearance first, then IoU.

Step 2: cosine distance of the smoothed embeddings fused with the Mahalanobis distance (all tracks, all
high-score detections); step 3: IoU with the predicted boxes, tracked tracks only after the appearance
step. Strong with clean embeddings, far worse than motion alone with weak ones (``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ibntrack.tracking.association import Association
from ibntrack.tracking.frame import Frame
from ibntrack.tracking.matching import embedding_distance, fuse_motion
from ibntrack.tracking.table import TrackState, TrackTable

__all__ = ["FairMOTAssociation"]

_TRACKED = TrackState.TRACKED.value


@dataclass(eq=False)
class FairMOTAssociation(Association):
    """Appearance fused with motion, then IoU.

    Args:
        kalman, per_class: see :class:`~ibntrack.tracking.association.Association`.
        use_embeddings: run the appearance step (when the detections carry embeddings).
        fuse_score: weight IoU similarity by detection score (ByteTrack).
        match_thresh_emb: maximum fused appearance/motion cost of step 2.
        motion_lambda: weight of the cosine distance; ``1 − motion_lambda`` weighs the Mahalanobis one.
        gating: forbid pairs outside the Kalman chi-square 0.95 gate in step 2.
        match_thresh_iou: maximum ``1 − IoU`` of step 3 without the appearance step.
        match_thresh_iou_after_emb: maximum ``1 − IoU`` of step 3 after it (tracked tracks only).
    """

    name: ClassVar[str] = "fairmot"
    use_embeddings: bool
    fuse_score: bool
    match_thresh_emb: float
    motion_lambda: float
    gating: bool
    match_thresh_iou: float
    match_thresh_iou_after_emb: float

    def match(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        appearance = self.use_embeddings and dets.embeddings is not None
        if appearance:
            pool, high = self._match_appearance(table, dets, pool, high)  # 2
        return self._match_iou(table, dets, pool, high, after_appearance=appearance)  # 3

    def _match_appearance(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 2: cosine distance of smoothed embeddings, fused with and gated by motion."""
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
                lambda_=self.motion_lambda,
                gate=self.gating,
            )
        _, pool, high = self.assign(table, dets, pool, high, cost, self.match_thresh_emb)
        return pool, high

    def _match_iou(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray, after_appearance: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 3: IoU with predicted boxes; lost tracks take part only without the appearance step.

        Returns the unmatched tracked tracks (lost ones that stay unmatched are left out) and the
        unmatched high-score detections.
        """
        state = table.state
        if after_appearance:
            candidates, thresh = pool[state[pool] == _TRACKED], self.match_thresh_iou_after_emb
        else:
            candidates, thresh = pool, self.match_thresh_iou
        cost = self.iou_cost(dets, candidates, high, self.fuse_score)
        _, rest, high = self.assign(table, dets, candidates, high, cost, thresh)
        return rest[state[rest] == _TRACKED], high
