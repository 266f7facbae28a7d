"""MultiObjectTracker on synthetic detections (no network)."""

import numpy as np
import pytest

from ibntrack.tracking.track import TrackState
from ibntrack.tracking.tracker import MultiObjectTracker, TrackerConfig

W, H = 40.0, 80.0


def _box(cx, cy=140.0):
    return [cx - W / 2, cy - H / 2, cx + W / 2, cy + H / 2]


def _ids_by_x(tracks):
    return [t.track_id for t in sorted(tracks, key=lambda t: t.box[0])]


def _meet_and_turn_back(use_embeddings):
    """Two people walk towards each other at 5 px/frame, meet out of sight and walk back.

    A starts at x=100 going right, B at x=300 going left. Frames 16-25 have no detections (occluded); they
    turn back at frame 20. When they reappear (frame 26) A is at 170 and B at 230, exactly where the
    constant-velocity prediction puts the *other* track (175 + 11·5 = 230 and 225 − 55 = 170).
    Returns {frame: [id of the left target, id of the right target]}.
    """
    tracker = MultiObjectTracker(TrackerConfig(use_embeddings=use_embeddings))
    emb = np.eye(8)[:2]  # A, B appearances
    ids = {}
    for f in range(1, 41):
        t = f if f <= 20 else 40 - f
        xa, xb = 100 + 5 * t, 300 - 5 * t
        if 16 <= f <= 25:
            tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8)))
            continue
        out = tracker.update(np.array([_box(xa), _box(xb)]), np.array([0.9, 0.9]), emb)
        ids[f] = (_ids_by_x(out), [t.track_id for t in out if t.embedding @ emb[0] > 0.9])
    return ids


def test_embeddings_keep_identities_through_occlusion():
    ids = _meet_and_turn_back(use_embeddings=True)
    assert ids[15][0] == [1, 2]  # before: A (id 1) left, B (id 2) right
    for f in range(26, 41):
        assert ids[f][0] == [1, 2], f  # after: A is left again, still id 1


def test_iou_only_swaps_identities():
    ids = _meet_and_turn_back(use_embeddings=False)
    assert ids[15][0] == [1, 2]
    for f in range(26, 41):
        assert ids[f][0] == [2, 1], f  # A (left) now carries B's id: an identity switch


def _static_run(scores, config):
    tracker = MultiObjectTracker(config)
    log = []
    for s in scores:
        out = tracker.update(np.array([_box(200)]), np.array([s]))
        log.append(([t.track_id for t in out], len(tracker.lost_tracks)))
    return log


def test_second_pass_keeps_track_alive_with_low_scores():
    scores = [0.9, 0.9, 0.3, 0.3, 0.3, 0.9]
    with_second = _static_run(scores, TrackerConfig())
    assert [ids for ids, _ in with_second] == [[1]] * 6
    without = _static_run(scores, TrackerConfig(low_thresh=0.5))  # no detection is "low": step 4 off
    assert [ids for ids, _ in without] == [[1], [1], [], [], [], [1]]
    assert [lost for _, lost in without] == [0, 0, 1, 1, 1, 0]


def _absent_then_seen(tracker, absent):
    """Seen at frame 1, no detections for ``absent`` frames, then seen again; returns the output IDs."""
    box = (np.array([_box(200)]), np.array([0.9]))
    tracker.update(*box)
    for _ in range(absent):
        tracker.update(np.zeros((0, 4)), np.zeros(0))
    return [t.track_id for t in tracker.update(*box)]


def test_lost_track_removed_after_buffer_exactly():
    tracker = MultiObjectTracker(TrackerConfig(track_buffer=5), frame_rate=30)
    assert tracker.max_time_lost == 5
    tracker.update(np.array([_box(200)]), np.array([0.9]))
    tracker.update(np.array([_box(200)]), np.array([0.9]))  # last seen: frame 2
    empty = (np.zeros((0, 4)), np.zeros(0))
    for frame in range(3, 7):  # lost in frames 3..6, still re-findable in frame 7 = 2 + buffer
        tracker.update(*empty)
        assert [t.track_id for t in tracker.lost_tracks] == [1], frame
    tracker.update(*empty)  # frame 7: missed for the 5th time -> removed
    assert tracker.lost_tracks == [] and tracker.frame_id == 7
    assert _absent_then_seen(MultiObjectTracker(TrackerConfig(track_buffer=5)), 4) == [1]
    assert _absent_then_seen(MultiObjectTracker(TrackerConfig(track_buffer=5)), 5) == []  # new, unconfirmed


def test_buffer_scales_with_frame_rate():
    config = TrackerConfig(track_buffer=30)
    assert MultiObjectTracker(config, frame_rate=10).max_time_lost == 10
    assert _absent_then_seen(MultiObjectTracker(config, frame_rate=10), 9) == [1]
    assert _absent_then_seen(MultiObjectTracker(config, frame_rate=10), 10) == []
    assert _absent_then_seen(MultiObjectTracker(config, frame_rate=30), 10) == [1]


def test_per_class_objects_at_same_place_keep_separate_tracks():
    tracker = MultiObjectTracker()
    box = np.array([_box(200), _box(200)])
    for f in range(6):
        classes = np.array([0, 1]) if f % 2 == 0 else np.array([1, 0])
        out = tracker.update(box, np.array([0.9, 0.8]), classes=classes)
        assert sorted((t.cls, t.track_id) for t in out) == [(0, 1), (1, 2)]


def test_track_never_changes_class():
    tracker = MultiObjectTracker()
    tracker.update(np.array([_box(200)]), np.array([0.9]), classes=np.array([0]))
    tracker.update(np.array([_box(200)]), np.array([0.9]), classes=np.array([1]))
    assert [(t.cls, t.state) for t in tracker.lost_tracks] == [(0, TrackState.LOST)]
    out = tracker.update(np.array([_box(200)]), np.array([0.9]), classes=np.array([1]))
    assert [(t.cls, t.track_id) for t in out] == [(1, 2)]


def test_new_tracks_need_two_frames_after_the_first_and_ids_have_no_gaps():
    tracker = MultiObjectTracker()
    assert [t.track_id for t in tracker.update(np.array([_box(100)]), np.array([0.9]))] == [1]
    spurious = np.array([_box(100), _box(400)])
    out = tracker.update(spurious, np.array([0.9, 0.9]))  # new object at 400: unconfirmed
    assert [t.track_id for t in out] == [1] and len(tracker.tracked_tracks) == 2
    out = tracker.update(np.array([_box(100), _box(700)]), np.array([0.9, 0.9]))  # 400 gone: removed
    assert [t.track_id for t in out] == [1]
    out = tracker.update(np.array([_box(100), _box(700)]), np.array([0.9, 0.9]))
    assert sorted(t.track_id for t in out) == [1, 2]


def test_new_track_thresh():
    tracker = MultiObjectTracker()
    tracker.update(np.array([_box(100)]), np.array([0.55]))  # high (>= 0.5) but below 0.6
    assert tracker.tracked_tracks == []


def test_trackers_do_not_share_ids_and_reset_restarts():
    a, b = MultiObjectTracker(), MultiObjectTracker()
    one = (np.array([_box(100)]), np.array([0.9]))
    two = (np.array([_box(100), _box(300)]), np.array([0.9, 0.9]))
    assert [t.track_id for t in a.update(*two)] == [1, 2]
    assert [t.track_id for t in b.update(*one)] == [1]
    a.reset()
    assert a.frame_id == 0 and a.tracked_tracks == [] and a.lost_tracks == []
    assert [t.track_id for t in a.update(*one)] == [1]


def test_follows_moving_target_and_min_box_area():
    tracker = MultiObjectTracker(TrackerConfig(min_box_area=W * H + 1))
    for f in range(10):
        out = tracker.update(np.array([_box(100 + 7 * f)]), np.array([0.9]))
        assert out == []  # filtered from the output ...
    assert len(tracker.tracked_tracks) == 1  # ... but still tracked
    np.testing.assert_allclose(tracker.tracked_tracks[0].box, _box(163), atol=0.5)
    assert tracker.tracked_tracks[0].mean[4] == pytest.approx(7.0, abs=0.5)


def test_empty_inputs_and_zero_width_embeddings():
    tracker = MultiObjectTracker()
    assert tracker.update(np.zeros((0, 4)), np.zeros(0)) == []
    assert tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 0)), np.zeros(0, int)) == []
    out = tracker.update(np.array([_box(100)]), np.array([0.9]), np.zeros((1, 0)))
    assert len(tracker.tracked_tracks) == 1 and out == [] and tracker.tracked_tracks[0].embedding is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"boxes_xyxy": np.zeros((2, 3)), "scores": np.zeros(2)}, "boxes_xyxy"),
        ({"boxes_xyxy": np.zeros((2, 4)), "scores": np.zeros(3)}, "scores"),
        (
            {"boxes_xyxy": np.zeros((2, 4)), "scores": np.zeros(2), "embeddings": np.zeros((3, 8))},
            "embeddings",
        ),
        ({"boxes_xyxy": np.zeros((2, 4)), "scores": np.zeros(2), "classes": np.zeros(1)}, "classes"),
        ({"boxes_xyxy": np.full((1, 4), np.nan), "scores": np.zeros(1)}, "boxes_xyxy"),
    ],
)
def test_input_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MultiObjectTracker().update(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("det_thresh", 1.5),
        ("match_thresh_iou", 0.0),
        ("track_buffer", -1),
        ("track_buffer", 2.5),
        ("match_thresh_emb", float("inf")),
        ("min_box_area", -1.0),
        ("per_class", 1),
    ],
)
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        TrackerConfig(**{field: value})


def test_config_cross_field_and_frame_rate_validation():
    with pytest.raises(ValueError, match="low_thresh"):
        TrackerConfig(det_thresh=0.3, low_thresh=0.4)
    with pytest.raises(ValueError, match="frame_rate"):
        MultiObjectTracker(frame_rate=0)
    assert TrackerConfig().replace(det_thresh=0.6).det_thresh == 0.6


def test_without_per_class_a_track_keeps_its_first_class():
    tracker = MultiObjectTracker(TrackerConfig(per_class=False))
    tracker.update(np.array([_box(200)]), np.array([0.9]), classes=np.array([0]))
    out = tracker.update(np.array([_box(200)]), np.array([0.9]), classes=np.array([1]))
    assert [(t.track_id, t.cls) for t in out] == [(1, 0)]


def _jump_run(config, use_embeddings):
    """A static target that jumps 16 px (0.4 of its width) in frame 4, e.g. a low frame rate.

    IoU of the jumped box with the (static) prediction is 24 / 56 = 0.43: ``1 − IoU = 0.57``.
    """
    tracker = MultiObjectTracker(config)
    emb = np.eye(4)[:1] if use_embeddings else None
    ids = []
    for f in range(1, 7):
        out = tracker.update(np.array([_box(200 if f < 4 else 216)]), np.array([0.9]), emb)
        ids.append([t.track_id for t in out])
    return ids


def test_iou_thresholds_bytetrack_first_association_fairmot_after_appearance():
    config = TrackerConfig()
    assert (config.match_thresh_iou, config.match_thresh_iou_after_emb) == (0.8, 0.5)
    assert (config.second_match_thresh, config.unconfirmed_match_thresh) == (0.5, 0.7)
    # IoU only: the first association accepts IoU >= 0.2, so the jump keeps the track ...
    assert _jump_run(config, use_embeddings=False) == [[1]] * 6
    # ... where IoU >= 0.5 loses it (a new track is confirmed one frame later, with a new id).
    strict = config.replace(match_thresh_iou=0.5)
    assert _jump_run(strict, use_embeddings=False) == [[1], [1], [1], [], [2], [2]]
    # With embeddings, appearance (gated by motion) re-finds it before the IoU step.
    assert _jump_run(config, use_embeddings=True) == [[1]] * 6


def test_returned_tracks_are_live_views():
    tracker = MultiObjectTracker()
    (a,) = tracker.update(np.array([_box(100)]), np.array([0.9]))
    tracker.update(np.array([_box(100), _box(400)]), np.array([0.9, 0.9]))  # 400: unconfirmed
    tracker.update(np.array([_box(104)]), np.array([0.9]))  # 400 is removed: rows move
    assert a.track_id == 1 and a.frame_id == 3 and a.tracklet_len == 2
    np.testing.assert_allclose(a.box, tracker.tracked_tracks[0].box)
    assert tracker.tracked_tracks[0] is a
    for _ in range(31):
        tracker.update(np.zeros((0, 4)), np.zeros(0))
    assert a.state == TrackState.REMOVED and tracker.lost_tracks == []  # a removed track keeps its last state
    assert a.track_id == 1 and a.frame_id == 3
