"""The gated association: appearance that cannot hurt, re-association by motion, warp, boxes, bad input."""

import numpy as np
import pytest

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.table import TrackTable
from ibntrack.tracking.tracker import MultiObjectTracker, TrackerConfig

W, H = 40.0, 80.0


def _box(cx, cy=140.0, w=W, h=H):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _crossing(tracker, emb_fn, frames=60):
    """Two walkers crossing (A right, B left at 4 px/frame, 30 px apart vertically); ids per frame."""
    out = {}
    for f in range(1, frames + 1):
        xa, xb = 100 + 4 * f, 340 - 4 * f
        boxes = np.array([_box(xa, 140), _box(xb, 170)])
        tracks = tracker.update(boxes, np.array([0.9, 0.9]), emb_fn(f))
        out[f] = sorted((round(float(t.box[0])), t.track_id) for t in tracks)
    return out


def test_random_embeddings_change_nothing():
    """Near-random embeddings never become reliable: the tracks equal those without embeddings."""
    rng = np.random.default_rng(0)
    noise = {f: rng.normal(size=(2, 64)) for f in range(1, 61)}
    with_emb = _crossing(MultiObjectTracker(), lambda f: noise[f])
    without = _crossing(MultiObjectTracker(), lambda f: None)
    assert with_emb == without
    tracker = MultiObjectTracker()
    _crossing(tracker, lambda f: noise[f])
    # consistency = mean cosine between the smoothed embedding and new random 64-d vectors: |.| < 0.3
    for t in tracker.tracked_tracks:
        row = t._row
        assert abs(tracker._table.emb_consistency[row]) < 0.3


def test_consistency_is_the_running_mean_of_cosines():
    table = TrackTable(ema_alpha=0.5)
    e0 = np.array([[1.0, 0.0]])
    rows = table.append(np.array([_box(100)]), [0.9], [0], e0)
    table.activate(KalmanFilter(), rows, 1)
    # second embedding at 60° from the first: cos = 0.5; first comparison: consistency = 0.5
    e1 = np.array([[0.5, np.sqrt(3) / 2]])
    table.update(KalmanFilter(), rows, np.array([_box(100)]), np.array([0.9]), 2, e1)
    assert table.emb_consistency[0] == pytest.approx(0.5)
    assert table.emb_count[0] == 2
    # the smoothed embedding is now the unit bisector (30°); the same e1 is at 30°: cos = 0.866;
    # second comparison: running mean (0.5 + 0.866) / 2
    table.update(KalmanFilter(), rows, np.array([_box(100)]), np.array([0.9]), 3, e1)
    assert table.emb_consistency[0] == pytest.approx((0.5 + np.sqrt(3) / 2) / 2, abs=1e-6)
    # a masked-out embedding is recorded as the current one but does not enter the smoothed one
    before = table.emb[0].copy()
    table.update(
        KalmanFilter(), rows, np.array([_box(100)]), np.array([0.9]), 4, e0, emb_mask=np.array([False])
    )
    np.testing.assert_array_equal(table.emb[0], before)
    np.testing.assert_allclose(table.curr_emb[0], [1.0, 0.0])
    assert table.emb_count[0] == 3


def test_occluded_detection_does_not_update_the_embedding():
    """A detection covered by one in front (larger y2) keeps its embedding out of the track's EMA."""
    tracker = MultiObjectTracker()
    a, b = np.eye(4)[0], np.eye(4)[1]
    for _ in range(3):  # A alone, clean
        tracker.update(np.array([_box(100)]), np.array([0.9]), a[None])
    (track,) = tracker.tracked_tracks
    before = track.embedding.copy()
    # A behind B: B's box (lower bottom edge) covers half of A's box; A's embedding looks like B
    boxes = np.array([_box(100), _box(120, 150)])
    tracker.update(boxes, np.array([0.9, 0.9]), np.stack([b, b]))
    np.testing.assert_array_equal(track.embedding, before)


def test_lost_track_is_refound_by_a_low_score_detection():
    """Second pass with lost tracks: an occluded target coming back with a low score keeps its id."""
    tracker = MultiObjectTracker()
    for _ in range(3):
        tracker.update(np.array([_box(200)]), np.array([0.9]))
    tracker.update(np.zeros((0, 4)), np.zeros(0))  # missed: LOST
    assert len(tracker.lost_tracks) == 1
    out = tracker.update(np.array([_box(200)]), np.array([0.3]))  # low score (0.1 <= s < 0.5)
    assert [t.track_id for t in out] == [1]
    old = MultiObjectTracker(TrackerConfig(second_pass_lost=False))
    for _ in range(3):
        old.update(np.array([_box(200)]), np.array([0.9]))
    old.update(np.zeros((0, 4)), np.zeros(0))
    assert old.update(np.array([_box(200)]), np.array([0.3])) == []  # ByteTrack's rule: tracked only


def _panning(warp_per_frame):
    """Four static objects seen by a camera panning 30 px/frame to the right (content moves left)."""
    tracker = MultiObjectTracker()
    ids = []
    for f in range(12):
        cx = np.array([200.0, 300.0, 400.0, 500.0]) - 30.0 * f
        boxes = np.array([_box(x, w=20, h=40) for x in cx])
        warp = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, 0.0]]) if (warp_per_frame and f) else None
        out = tracker.update(boxes, np.full(4, 0.9), warp=warp)
        ids.append(sorted(t.track_id for t in out))
    return ids


def test_warp_keeps_identities_under_camera_motion():
    # 20-px-wide boxes jumping 30 px/frame: no overlap with the prediction after frame 2 without the warp
    assert _panning(True)[-1] == [1, 2, 3, 4]
    assert _panning(False)[-1] != [1, 2, 3, 4]


def test_table_warp_moves_mean_and_covariance():
    table = TrackTable()
    rows = table.append(np.array([[90.0, 80.0, 110.0, 120.0]]), [0.9], [0])  # cx 100, cy 100, a 0.5, h 40
    kf = KalmanFilter()
    table.activate(kf, rows, 1)
    table.means[0, 4:6] = [2.0, 1.0]
    cov = table.covs[0].copy()
    # rotation by 90° and zoom 2: A = [[0, -2], [2, 0]], t = (10, 20)
    table.warp(np.array([[0.0, -2.0, 10.0], [2.0, 0.0, 20.0]]))
    np.testing.assert_allclose(table.means[0, :4], [0 * 100 - 2 * 100 + 10, 2 * 100 + 20, 0.5, 80.0])
    np.testing.assert_allclose(table.means[0, 4:6], [-2.0, 4.0])
    # P' = T P Tᵀ: x and y swap variances (×4), h variance ×4, aspect unchanged
    np.testing.assert_allclose(table.covs[0, 0, 0], 4 * cov[1, 1])
    np.testing.assert_allclose(table.covs[0, 1, 1], 4 * cov[0, 0])
    np.testing.assert_allclose(table.covs[0, 3, 3], 4 * cov[3, 3])
    np.testing.assert_allclose(table.covs[0, 2, 2], cov[2, 2])


def test_output_box_detection_or_kalman():
    boxes = [np.array([_box(100 + 5 * f + (3 if f % 2 else -3))]) for f in range(6)]  # jittery walker
    det = MultiObjectTracker(TrackerConfig(output_box="detection"))
    kal = MultiObjectTracker(TrackerConfig(output_box="kalman"))
    for b in boxes:
        out_d = det.update(b, np.array([0.9]))
        out_k = kal.update(b, np.array([0.9]))
    np.testing.assert_allclose(out_d[0].box, boxes[-1][0])
    assert not np.allclose(out_k[0].box, boxes[-1][0])
    # auto: detection boxes below 20 fps, Kalman estimates from 20 fps on
    assert MultiObjectTracker(frame_rate=10)._table.box_source == "detection"
    assert MultiObjectTracker(frame_rate=30)._table.box_source == "kalman"


def test_frame_rate_scales_process_noise():
    kf30, kf10 = KalmanFilter.for_frame_rate(30), KalmanFilter.for_frame_rate(10)
    h = np.array([100.0])
    s30, s10 = kf30._process_std(h)[0], kf10._process_std(h)[0]
    # position std h/20 = 5 at 30 fps, ×3 at 10 fps; velocity h/160 = 0.625, ×9
    np.testing.assert_allclose(s30[[0, 1, 3]], 5.0)
    np.testing.assert_allclose(s10[[0, 1, 3]], 15.0)
    np.testing.assert_allclose(s10[[4, 5, 7]], 9 * 0.625)
    assert MultiObjectTracker(frame_rate=10).kalman.process_scale == 3.0
    assert (
        MultiObjectTracker(TrackerConfig(frame_rate_noise=False), frame_rate=10).kalman.process_scale == 1.0
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"boxes_xyxy": [[0, 0, np.nan, 10]]}, "boxes_xyxy must be finite"),
        ({"boxes_xyxy": [[0, 0, np.inf, 10]]}, "boxes_xyxy must be finite"),
        ({"boxes_xyxy": [[10, 0, 5, 10]]}, "x2 >= x1"),
        ({"boxes_xyxy": [[0, 10, 5, 5]]}, "y2 >= y1"),
        ({"scores": [np.nan]}, "scores must be finite"),
        ({"scores": [1.5]}, r"scores must be in \[0, 1\]"),
        ({"scores": [-0.1]}, r"scores must be in \[0, 1\]"),
        ({"embeddings": [[0.0, 0.0]]}, "embeddings must not have zero rows"),
        ({"embeddings": [[np.nan, 1.0]]}, "embeddings must be finite"),
        ({"warp": np.eye(2)}, r"warp must have shape \[2, 3\]"),
        ({"warp": np.ones((3, 3))}, "warp must be affine"),
        ({"warp": [[1, 0, np.nan], [0, 1, 0]]}, "warp must be finite"),
        ({"warp": [[0, 0, 1], [0, 0, 1]]}, "warp must be invertible"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"boxes_xyxy": [[0, 0, 5, 10]], "scores": [0.9], "embeddings": None, "warp": None}
    args.update(kwargs)
    tracker = MultiObjectTracker()
    with pytest.raises(ValueError, match=match):
        tracker.update(
            np.asarray(args["boxes_xyxy"], float),
            np.asarray(args["scores"], float),
            None if args["embeddings"] is None else np.asarray(args["embeddings"], float),
            warp=args["warp"],
        )
    assert tracker.frame_id == 0  # nothing changed


def test_embedding_width_must_not_change():
    tracker = MultiObjectTracker()
    tracker.update(np.array([_box(100)]), np.array([0.9]), np.ones((1, 8)))
    with pytest.raises(ValueError, match="embeddings must have E = 8"):
        tracker.update(np.array([_box(100)]), np.array([0.9]), np.ones((1, 4)))
    assert tracker.frame_id == 1


def test_fairmot_association_is_still_available():
    cfg = TrackerConfig(association="fairmot")
    ids = _crossing(MultiObjectTracker(cfg), lambda f: np.eye(4)[:2])
    assert len(ids[60]) == 2 and {i for _, i in ids[60]} == {1, 2}
    with pytest.raises(ValueError, match="association"):
        TrackerConfig(association="sort")
    with pytest.raises(ValueError, match="output_box"):
        TrackerConfig(output_box="mean")
    with pytest.raises(ValueError, match="oru"):
        TrackerConfig(oru=-1)
