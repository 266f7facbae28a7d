"""The packaged teachers: box geometry and suppression by hand, and the real HOG detector on real footage."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from ibntrack.adapt.teacher import HogPeopleDetector, TeacherError, _body_box, make_teacher, nms

ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = Path(os.environ.get("IBNTRACK_FOOTAGE", ROOT / ".cache" / "footage" / "vtest.avi"))


def test_body_box_removes_the_inria_margins():
    # a 64x128 window at (10, 20): body 96 tall (16 px margins), 0.41 * 96 = 39.36 wide, same centre (42, 84)
    box = _body_box(np.array([10.0]), np.array([20.0]), np.array([64.0]), np.array([128.0]))[0]
    np.testing.assert_allclose(box, [42 - 19.68, 36, 42 + 19.68, 132], atol=1e-4)


def test_nms_keeps_the_stronger_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    # boxes 0 and 1 overlap by 90 / 110 = 0.82 > 0.4: the stronger (1) stays; box 2 is alone
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 2, 0]


def test_unknown_teacher_is_named():
    with pytest.raises(TeacherError, match="unknown teacher 'yolo'.*cascade.*hog"):
        make_teacher("yolo")


def test_opencv_without_hog_says_how_to_get_it(monkeypatch):
    monkeypatch.delattr(cv2, "HOGDescriptor")
    with pytest.raises(TeacherError, match="no teacher available.*opencv-python<5"):
        HogPeopleDetector()


def test_cascade_teacher_loads_from_the_wheel_and_finds_nothing_in_a_blank_frame():
    boxes, scores = make_teacher("cascade")(np.full((240, 320, 3), 128, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def _frame(index: int) -> np.ndarray:
    assert FOOTAGE.is_file(), (
        f"{FOOTAGE} missing: run scripts/fetch_footage.sh .cache/footage (make test does)"
    )
    cap = cv2.VideoCapture(str(FOOTAGE))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_hog_finds_the_walkers_of_real_footage():
    # frame 400 of vtest.avi (0-based 399): three people walk, centres read off the frame by eye
    people = np.array([[288, 245], [601, 172], [713, 352]], np.float64)
    boxes, scores = HogPeopleDetector()(_frame(399))
    assert boxes.shape[1] == 4 and np.all((scores >= 0.5) & (scores < 1))
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    found = [np.min(np.linalg.norm(centres - p, axis=1)) < 20 for p in people]
    assert sum(found) >= 2, (centres, scores)
    # boxes are body-shaped (0.41 w/h) and of the people's size (about 60-110 px tall here)
    h = boxes[:, 3] - boxes[:, 1]
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / h, 0.41, atol=1e-3)
    assert np.median(h) > 40 and np.median(h) < 160
