"""Pseudo-label refinement: background, camera motion, tracklets; numbers derived by hand."""

import logging

import numpy as np
import pytest

from ibntrack.adapt.pseudo import (
    PseudoLabelConfig,
    PseudoLabelError,
    background_model,
    camera_is_static,
    foreground_fraction,
    label_footage,
    link_tracklets,
)


def _textured(seed: int = 0, shape=(120, 160)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (shape[0] // 8, shape[1] // 8), dtype=np.uint8)
    grey = np.kron(base, np.ones((8, 8), np.uint8))  # 8x8 blocks: corners to track
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_background_is_the_median_and_foreground_is_counted_in_boxes():
    frames = [np.zeros((40, 60, 3), np.uint8) for _ in range(5)]
    frames[0][0:10, 0:10] = 255  # a passer-by in one of five frames: the median ignores it
    bg = background_model(frames)
    assert bg.shape == (40, 60) and bg.max() == 0
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[10:20, 10:20] = 200  # a 10x10 object
    boxes = np.array([[10, 10, 30, 20], [40, 0, 50, 10], [-5, -5, 0, 0]], np.float32)
    # box 0: 200 px, 100 of them foreground = 0.5; box 1: empty; box 2: outside the frame
    np.testing.assert_allclose(foreground_fraction(frame, bg, boxes, diff=25), [0.5, 0.0, 0.0])


def test_static_and_moving_cameras_are_told_apart():
    still = [_textured(0) for _ in range(4)]
    static, shift = camera_is_static(still, max_shift=1.5)
    assert static and shift < 0.5
    panning = [np.roll(_textured(0), 6 * i, axis=1) for i in range(4)]  # 6 px per sampled frame
    static, shift = camera_is_static(panning, max_shift=1.5)
    assert not static and shift == pytest.approx(6, abs=1.0)


def _walker(frames, gap=(), blob_at=None):
    """A box walking 4 px per frame right; missing in ``gap``; a one-frame blob at ``blob_at``."""
    for f in range(1, frames + 1):
        boxes, scores = [], []
        if f not in gap:
            x = 10 + 4 * (f - 1)
            boxes.append([x, 20, x + 20, 70])
            scores.append(0.9)
        if f == blob_at:
            boxes.append([100, 5, 120, 55])
            scores.append(0.9)
        yield f, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def test_tracklets_drop_blobs_and_fill_short_gaps():
    rows = link_tracklets(_walker(12, gap={6, 7}, blob_at=3), min_track=5, max_gap=5, frame_rate=10)
    # one identity on all 12 frames: 10 seen + frames 6 and 7 interpolated; the blob is gone
    assert rows.shape == (12, 9)
    assert set(rows[:, 1]) == {1}
    assert rows[:, 0].tolist() == list(range(1, 13))
    f6 = rows[rows[:, 0] == 6][0]
    np.testing.assert_allclose(f6[2:6], [30, 20, 20, 50], atol=0.5)  # x = 10 + 4 * 5, interpolated
    assert np.all(rows[:, 6:] == 1)


def test_short_tracklets_are_not_labels():
    rows = link_tracklets(_walker(4), min_track=5, max_gap=5, frame_rate=10)
    assert rows.shape == (0, 9)


def _teacher_from(per_frame):
    table = {f: (b, s) for f, b, s in per_frame}
    calls = iter(sorted(table))
    return lambda frame: table[next(calls)]


def test_label_footage_refuses_short_footage_and_empty_labels():
    frames = [(f, np.zeros((90, 160, 3), np.uint8)) for f in range(1, 13)]
    teacher = _teacher_from(_walker(12))
    with pytest.raises(PseudoLabelError, match="clip: 12 frames.*at least 20"):
        label_footage(iter(frames), teacher, PseudoLabelConfig(use_background="off"), 10, [], name="clip")
    nothing = lambda frame: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # noqa: E731
    with pytest.raises(PseudoLabelError, match="no confident pseudo-labels: the teacher found 0 boxes"):
        label_footage(iter(frames), nothing, PseudoLabelConfig(min_frames=5, use_background="off"), 10, [])


def test_moving_camera_falls_back_to_time_alone(caplog):
    frames = [(f, np.roll(_textured(1), 6 * f, axis=1)) for f in range(1, 25)]
    teacher = _teacher_from(_walker(24))
    with caplog.at_level(logging.WARNING):
        labels = label_footage(iter(frames), teacher, PseudoLabelConfig(), 10, [f for _, f in frames[::4]])
    assert not labels.static
    assert "camera moves" in caplog.text
    # without the background check every teacher box is kept and forms one 24-frame tracklet
    assert labels.counts == {"teacher": 24, "foreground": 24, "tracklets": 24}


def test_static_camera_drops_boxes_on_the_empty_background():
    bg = _textured(2)
    frames = []
    for f in range(1, 25):
        img = bg.copy()
        x = 10 + 4 * (f - 1)
        img[20:70, x : x + 20] = 255 - img[20:70, x : x + 20]  # the walker differs from the background
        frames.append((f, img))
    # the teacher sees the walker and, every frame, a ghost on the empty background at the same place
    per_frame = [
        (f, np.vstack([b, [[120, 80, 140, 110]]]).astype(np.float32), np.append(s, 0.9))
        for f, b, s in _walker(24)
    ]
    labels = label_footage(
        iter(frames), _teacher_from(per_frame), PseudoLabelConfig(), 10, [f for _, f in frames[::2]]
    )
    assert labels.static
    assert labels.counts["teacher"] == 48 and labels.counts["foreground"] == 24
    assert set(labels.rows[:, 1]) == {1} and len(labels.rows) == 24
