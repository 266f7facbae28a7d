"""Track life cycle and embedding smoothing."""

import numpy as np
import pytest

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.track import Track, TrackState

BOX = np.array([10.0, 20.0, 50.0, 100.0])


def test_life_cycle():
    kf = KalmanFilter()
    t = Track(BOX, 0.9, cls=2)
    assert t.state == TrackState.NEW and t.track_id == 0 and not t.is_activated
    t.activate(kf, frame_id=5)
    assert t.state == TrackState.TRACKED and not t.is_activated and t.start_frame == 5
    np.testing.assert_allclose(t.box, BOX, atol=1e-4)
    assert t.box.dtype == np.float32
    t.update(kf, BOX + 2, 0.8, frame_id=6)
    t.confirm(7)
    assert t.is_activated and t.track_id == 7 and t.tracklet_len == 1 and t.frame_id == 6 and t.score == 0.8
    t.mark_lost()
    assert t.state == TrackState.LOST
    t.re_activate(kf, BOX, 0.7, frame_id=9)
    assert t.state == TrackState.TRACKED and t.tracklet_len == 0 and t.frame_id == 9 and t.cls == 2
    t.mark_removed()
    assert t.state == TrackState.REMOVED


def test_update_before_activate_fails():
    with pytest.raises(ValueError, match="activated"):
        Track(BOX, 0.9).update(KalmanFilter(), BOX, 0.9, 2)


def test_embedding_ema():
    kf = KalmanFilter()
    t = Track(BOX, 0.9, embedding=np.array([2.0, 0.0]), ema_alpha=0.9)
    np.testing.assert_allclose(t.embedding, [1.0, 0.0])
    t.activate(kf, 1, track_id=1)
    t.update(kf, BOX, 0.9, 2, embedding=np.array([0.0, 5.0]))
    np.testing.assert_allclose(t.embedding, np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), rtol=1e-6)
    np.testing.assert_allclose(t.curr_embedding, [0.0, 1.0])
    t.update(kf, BOX, 0.9, 3)  # no embedding: the smoothed one is kept
    np.testing.assert_allclose(t.embedding, np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), rtol=1e-6)


def test_multi_update_matches_single_updates():
    kf = KalmanFilter()
    a, b = Track(BOX, 0.9), Track(BOX + 5, 0.9)
    a2, b2 = Track(BOX, 0.9), Track(BOX + 5, 0.9)
    for t in (a, b, a2, b2):
        t.activate(kf, 1, track_id=1)
    b.mark_lost()
    b2.mark_lost()
    Track.multi_predict(kf, [a, b])
    Track.multi_predict(kf, [a2])
    Track.multi_predict(kf, [b2])
    Track.multi_update(kf, [a, b], np.stack([BOX + 1, BOX + 7]), np.array([0.6, 0.7]), 2)
    a2.update(kf, BOX + 1, 0.6, 2)
    b2.re_activate(kf, BOX + 7, 0.7, 2)
    for x, y in ((a, a2), (b, b2)):
        np.testing.assert_allclose(x.mean, y.mean)
        assert (x.state, x.tracklet_len, x.score) == (y.state, y.tracklet_len, y.score)


def test_lost_tracks_predict_without_height_velocity():
    kf = KalmanFilter()
    t = Track(BOX, 0.9)
    t.activate(kf, 1, track_id=1)
    t.mean[7] = 2.0  # growing
    t.mark_lost()
    Track.multi_predict(kf, [t])
    assert t.mean[3] == pytest.approx(80.0)


def test_no_class_level_state():
    a, b = Track(BOX, 0.9), Track(BOX, 0.9)
    a.activate(KalmanFilter(), 1, track_id=3)
    assert b.track_id == 0 and b.mean is None
    mutable = [k for k, v in vars(Track).items() if isinstance(v, list | dict | set | int | np.ndarray)]
    assert mutable == []
