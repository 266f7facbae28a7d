"""TrackTable: batched life cycle equals the one-track methods; views survive compaction."""

import numpy as np
import pytest

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.table import TrackState, TrackTable
from ibntrack.tracking.track import Track

BOXES = np.array([[10.0, 20.0, 50.0, 100.0], [200.0, 20.0, 230.0, 90.0], [400.0, 50.0, 420.0, 95.0]])


def _table(embeddings=None):
    table = TrackTable(ema_alpha=0.9)
    rows = table.append(BOXES, [0.9, 0.8, 0.7], [0, 1, 0], embeddings)
    table.activate(KalmanFilter(), rows, frame_id=1, track_ids=np.array([1, 2, 3]))
    return table


def test_batched_update_equals_single_tracks():
    kf = KalmanFilter()
    emb = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    table = _table(emb)
    singles = [Track(b, s, c, e) for b, s, c, e in zip(BOXES, [0.9, 0.8, 0.7], [0, 1, 0], emb, strict=True)]
    for i, t in enumerate(singles):
        t.activate(kf, 1, track_id=i + 1)
    table.mark_lost(np.array([1]))
    singles[1].mark_lost()
    table.predict(kf)
    Track.multi_predict(kf, singles)
    new_boxes, new_emb = (
        BOXES + [[2, 1, 2, 1], [5, 0, 5, 0], [0, 0, 0, 0]],
        np.array([[0, 1.0], [1, 0], [1, 0]]),
    )
    rows = np.array([2, 0, 1])  # any order
    table.update(kf, rows, new_boxes[rows], np.array([0.5, 0.6, 0.4]), 2, new_emb[rows])
    singles[0].update(kf, new_boxes[0], 0.6, 2, new_emb[0])
    singles[1].re_activate(kf, new_boxes[1], 0.4, 2, new_emb[1])
    singles[2].update(kf, new_boxes[2], 0.5, 2, new_emb[2])
    for row, t in enumerate(singles):
        view = Track.of(table, row)
        np.testing.assert_allclose(view.mean, t.mean, rtol=1e-12)
        np.testing.assert_allclose(view.covariance, t.covariance, rtol=1e-12)
        np.testing.assert_allclose(view.embedding, t.embedding, rtol=1e-6)
        assert (view.state, view.tracklet_len, view.score, view.track_id) == (
            t.state,
            t.tracklet_len,
            t.score,
            t.track_id,
        )
    # The lost track was re-activated (tracklet restarts), the others extended theirs.
    assert table.tracklet_len.tolist() == [1, 0, 1]
    # EMA of track 0: 0.9·(1, 0) + 0.1·(0, 1), renormalised.
    np.testing.assert_allclose(table.emb[0], np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), rtol=1e-6)


def test_first_embedding_starts_the_ema():
    table = _table(None)
    assert table.emb_dim == 0 and not table.has_emb.any()
    table.update(KalmanFilter(), np.array([1]), BOXES[1:2], np.array([0.9]), 2, np.array([[0.0, 4.0]]))
    np.testing.assert_allclose(table.emb[1], [0.0, 1.0])
    assert table.has_emb.tolist() == [False, True, False]
    assert Track.of(table, 0).embedding is None
    with pytest.raises(ValueError, match="E = 2"):
        table.update(KalmanFilter(), np.array([0]), BOXES[:1], np.array([0.9]), 3, np.ones((1, 3)))


def test_compact_keeps_views_and_freezes_removed_ones():
    table = _table()
    first, middle, last = (Track.of(table, r) for r in range(3))
    assert Track.of(table, 1) is middle  # one view per row
    table.mark_removed(np.array([1]))
    table.compact()
    assert len(table) == 2 and table.track_ids.tolist() == [1, 3]
    assert (first.track_id, last.track_id) == (1, 3)  # views follow their rows
    assert Track.of(table, 1) is last
    # The removed track still reads its last state, and later changes to the table do not reach it.
    assert (middle.track_id, middle.state, middle.cls) == (2, TrackState.REMOVED, 1)
    box = middle.box
    table.predict(KalmanFilter())
    table.mark_lost(np.array([0, 1]))
    np.testing.assert_array_equal(middle.box, box)
    assert middle.state == TrackState.REMOVED and last.state == TrackState.LOST


def test_append_validates_alpha_and_boxes_view():
    with pytest.raises(ValueError, match="ema_alpha"):
        TrackTable(ema_alpha=1.5)
    table = _table()
    np.testing.assert_allclose(table.boxes(), BOXES)
    np.testing.assert_allclose(table.boxes(np.array([2])), BOXES[2:])
    np.testing.assert_allclose(table.areas(), [40 * 80, 30 * 70, 20 * 45])
