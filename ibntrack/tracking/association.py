"""What every association strategy shares: :class:`Association`, the base of one class per strategy
(:class:`~ibntrack.tracking.gated.GatedAssociation`, :class:`~ibntrack.tracking.fairmot.FairMOTAssociation`).

A strategy runs steps 2–3 of :meth:`MultiObjectTracker.update` (the high-score detections against the
tracked and lost tracks) on the tracker's :class:`~ibntrack.tracking.table.TrackTable`; the tracker runs the
rest (prediction, low-score pass, unconfirmed tracks, births, expiry) with the cost helpers defined here.
A strategy reads the table and records matches in the :class:`~ibntrack.tracking.frame.Frame`; only the
tracker changes track state (after step 5, all matches at once).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ibntrack.tracking.config import TrackerConfig
from ibntrack.tracking.frame import Frame
from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.matching import fuse_score, iou_distance, linear_assignment
from ibntrack.tracking.table import TrackTable

__all__ = ["Association"]


@dataclass(eq=False)
class Association:
    """Steps 2–3 of the tracker, and the matching helpers every step uses.

    A strategy's arguments are the thresholds it reads, each documented (in the strategy's docstring and
    as the :class:`~ibntrack.tracking.TrackerConfig` field of the same name); :meth:`from_config` takes them
    from a config.

    Args:
        kalman: the tracker's motion model (gating distances).
        per_class: never associate across classes (``inf`` cost between different classes).
    """

    name: ClassVar[str] = "base"
    kalman: KalmanFilter
    per_class: bool

    @classmethod
    def from_config(cls, config: TrackerConfig, kalman: KalmanFilter) -> Association:
        """The strategy with ``config``'s value for each of its arguments (the other fields of the config
        are the tracker's or another strategy's)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "kalman"]
        return cls(kalman=kalman, **{name: getattr(config, name) for name in names})

    def prepare(self, table: TrackTable, dets: Frame) -> None:
        """Per-frame facts the strategy needs before matching (nothing by default)."""

    def match(
        self, table: TrackTable, dets: Frame, pool: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Steps 2–3: match the high-score detections ``high`` (indices) to the table rows ``pool``.

        Returns:
            The rows left for the low-score pass (step 4) and the high-score detections left unmatched.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def iou_cost(self, dets: Frame, rows: np.ndarray, idx: np.ndarray, fuse: bool) -> np.ndarray:
        """``[rows.size, idx.size]`` ``1 − IoU`` between predicted track boxes and detections ``idx``."""
        if rows.size == 0 or idx.size == 0:
            return np.zeros((rows.size, idx.size))
        if dets.iou_all is None:  # every row against every detection, once per frame (steps slice it)
            dets.iou_all = iou_distance(dets.track_boxes, dets.boxes)
        cost = dets.iou_all[np.ix_(rows, idx)]
        if fuse:
            cost = fuse_score(cost, dets.scores[idx])
        return cost

    def class_gate(
        self, table: TrackTable, dets: Frame, rows: np.ndarray, idx: np.ndarray, cost: np.ndarray
    ) -> np.ndarray:
        """With ``per_class``, forbid (``inf``) every pair whose track and detection classes differ."""
        if not self.per_class or cost.size == 0:
            return cost
        if dets.one_class is None:  # once per frame: one class among all detections and tracks
            c, t = dets.classes, table.classes
            dets.one_class = bool(c.size == 0 or ((c == c[0]).all() and (t == c[0]).all()))
        if dets.one_class:
            return cost
        same = table.classes[rows][:, None] == dets.classes[idx][None, :]
        return cost if same.all() else np.where(same, cost, np.inf)

    def assign(
        self,
        table: TrackTable,
        dets: Frame,
        rows: np.ndarray,
        idx: np.ndarray,
        cost: np.ndarray,
        thresh: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve ``cost [rows, idx]`` (class-gated) below ``thresh`` and record the matches (corrected
        after step 5).

        Returns:
            ``matches [K, 2]`` (positions in ``rows`` and ``idx``), the unmatched rows, the unmatched
            detection indices.
        """
        matches, u_track, u_det = linear_assignment(self.class_gate(table, dets, rows, idx, cost), thresh)
        if matches.shape[0]:
            dets.matched_rows.append(rows[matches[:, 0]])
            dets.matched_dets.append(idx[matches[:, 1]])
        return matches, rows[u_track], idx[u_det]
