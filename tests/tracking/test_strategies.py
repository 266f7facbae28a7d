"""One class per association strategy: each takes exactly the thresholds it reads, the tracker the rest."""

import dataclasses

import numpy as np

from ibntrack.tracking import MultiObjectTracker, TrackerConfig
from ibntrack.tracking.fairmot import FairMOTAssociation
from ibntrack.tracking.gated import GatedAssociation
from ibntrack.tracking.kalman import KalmanFilter

#: The fields the tracker reads itself (steps 1, 4-7, the table, the output), whatever the strategy.
TRACKER_FIELDS = {
    "det_thresh", "low_thresh", "new_track_thresh", "second_match_thresh", "unconfirmed_match_thresh",
    "track_buffer", "ema_alpha", "min_box_area", "oru", "frame_rate_noise", "output_box", "association",
    "fuse_score", "per_class",
}  # fmt: skip


def _args(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"kalman"}


def test_every_setting_has_one_reader_and_the_dead_ones_are_named():
    gated, fairmot = _args(GatedAssociation), _args(FairMOTAssociation)
    every = {f.name for f in dataclasses.fields(TrackerConfig)}
    assert len(every) == 33 and TRACKER_FIELDS | gated | fairmot == every
    # the count: 4 settings only FairMOT reads, 13 only the gated pipeline reads
    assert fairmot - gated - TRACKER_FIELDS == {
        "match_thresh_emb", "motion_lambda", "gating", "match_thresh_iou_after_emb",
    }  # fmt: skip
    assert len(gated - fairmot - TRACKER_FIELDS) == 13


def test_from_config_takes_the_strategys_own_fields():
    cfg = TrackerConfig(match_thresh_iou=0.7, match_thresh_emb=0.3, reid_thresh=0.2)
    k = KalmanFilter()
    g, f = GatedAssociation.from_config(cfg, k), FairMOTAssociation.from_config(cfg, k)
    assert (g.match_thresh_iou, g.reid_thresh, g.kalman) == (0.7, 0.2, k)
    assert (f.match_thresh_iou, f.match_thresh_emb) == (0.7, 0.3) and not hasattr(f, "reid_thresh")
    assert isinstance(MultiObjectTracker(cfg).association, GatedAssociation)
    assert isinstance(MultiObjectTracker(cfg.replace(association="fairmot")).association, FairMOTAssociation)


def test_a_setting_of_the_other_strategy_changes_nothing():
    """FairMOT tracks the same with any gated-only setting (and the other way round)."""
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 400, size=(6, 2))
    frames = []
    for t in range(12):
        xy = starts + 4.0 * t
        boxes = np.concatenate([xy, xy + 40.0], axis=1).astype(np.float32)
        emb = np.eye(8, dtype=np.float32)[:6] + 0.05 * rng.standard_normal((6, 8)).astype(np.float32)
        frames.append((boxes, rng.uniform(0.3, 0.9, 6).astype(np.float32), emb))

    def run(cfg: TrackerConfig) -> list[tuple]:
        mot = MultiObjectTracker(cfg)
        return [tuple((t.track_id, *t.box.round(3)) for t in mot.update(*f)) for f in frames]

    fair = TrackerConfig(association="fairmot")
    assert run(fair) == run(fair.replace(reid_thresh=0.9, veto_ratio=0.9, appearance_first=False))
    gated = TrackerConfig()
    assert run(gated) == run(gated.replace(match_thresh_emb=0.05, motion_lambda=0.1, gating=False))
    assert any(run(gated))  # tracks came out: the comparison compared something
