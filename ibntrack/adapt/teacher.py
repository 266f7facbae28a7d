"""Real, packaged people detectors used as teachers for self-training on unlabeled footage.

Both ship inside the ``opencv-python`` wheel (nothing is downloaded): OpenCV's HOG + linear-SVM people
detector (Dalal & Triggs 2005, trained on the real INRIA pedestrians) and the Haar full-body cascade
(``cv2.data.haarcascades``). OpenCV 5 removed both from the main module; ``opencv-python<5`` has them.

A teacher maps a frame to boxes: ``frame_bgr [H, W, 3] uint8 -> (boxes [N, 4] float32 xyxy frame pixels,
scores [N] float32 in [0, 1])``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

__all__ = ["TEACHERS", "CascadeFullBodyDetector", "HogPeopleDetector", "TeacherError", "make_teacher", "nms"]

# INRIA's 64x128 training windows hold a person about 96 px tall, centred, with 16 px above and below;
# the body is about 0.41 of its height wide (the MOTChallenge full-body box shape).
_INRIA_BODY_HEIGHT = 96 / 128
_BODY_ASPECT = 0.41


class TeacherError(ValueError):
    """No usable teacher in this installation, or a teacher given wrong arguments."""


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; ``boxes [N, 4]`` xyxy, ``scores [N]`` -> kept indices ``[K]``."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        ious = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[ious <= iou]
    return np.asarray(keep, dtype=np.int64)


def _squash(margin: np.ndarray, scale: float) -> np.ndarray:
    """An SVM margin or a cascade level weight as a score in (0, 1): ``1 / (1 + exp(-margin / scale))``."""
    return (1.0 / (1.0 + np.exp(-margin / scale))).astype(np.float32)


def _body_box(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Detector windows ``[N]`` x/y/w/h -> the full-body box inside each, ``[N, 4]`` xyxy.

    The window's vertical margins (INRIA layout) are removed and the width set to the body aspect,
    centred: ``h' = 0.75 h``, ``w' = 0.41 h'``.
    """
    cx, cy = x + w / 2, y + h / 2
    bh = h * _INRIA_BODY_HEIGHT
    bw = bh * _BODY_ASPECT
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)


class HogPeopleDetector:
    """OpenCV's default HOG people detector as a teacher.

    Its 64x128 window finds people about 100 px tall and more; frames are upscaled by ``upscale`` so
    that smaller people are found too (people of ~50 px at ``upscale=2``).

    Args:
        upscale: frame magnification before detection (>= 1).
        min_score: lowest score kept (the SVM margin squashed to (0, 1); 0.5 is a zero margin).
        win_stride: window step in (upscaled) pixels.
        scale: pyramid step.
        nms_iou: overlap above which the weaker of two boxes is dropped.
    """

    name = "hog"

    def __init__(
        self,
        upscale: float = 2.0,
        min_score: float = 0.5,
        win_stride: int = 8,
        scale: float = 1.05,
        nms_iou: float = 0.4,
    ) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise TeacherError(
                f"no teacher available: this OpenCV ({cv2.__version__}) has no HOGDescriptor (OpenCV 5 "
                "removed it); install the 4.x wheel: pip install 'opencv-python<5'"
            )
        if not upscale >= 1.0:
            raise TeacherError(f"upscale must be >= 1, got {upscale}")
        if not 0.0 <= min_score < 1.0:
            raise TeacherError(f"min_score must be in [0, 1), got {min_score}")
        self.upscale = float(upscale)
        self.min_score = float(min_score)
        self.win_stride = (int(win_stride), int(win_stride))
        self.scale = float(scale)
        self.nms_iou = float(nms_iou)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())  # type: ignore[call-overload]

    def __call__(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[H, W, 3]`` uint8 BGR -> ``(boxes [N, 4] xyxy, scores [N])`` in frame pixels."""
        img = frame_bgr
        if self.upscale != 1.0:
            img = cv2.resize(
                frame_bgr, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
            )
        rects, weights = self._hog.detectMultiScale(
            img, winStride=self.win_stride, padding=(8, 8), scale=self.scale, hitThreshold=0.0
        )
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        r = np.asarray(rects, np.float64).reshape(-1, 4) / self.upscale
        scores = _squash(np.asarray(weights, np.float64).reshape(-1), 1.0)
        boxes = _body_box(r[:, 0], r[:, 1], r[:, 2], r[:, 3])
        keep = scores >= self.min_score
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, self.nms_iou)
        return boxes[keep], scores[keep]


class CascadeFullBodyDetector:
    """The Haar full-body cascade shipped in ``cv2.data.haarcascades`` as a teacher.

    Weaker than HOG (Kruppa et al. 2003); useful for agreement: a box both teachers find is surer.
    Scores are the cascade's last-stage level weights squashed to (0, 1).

    Args:
        upscale: frame magnification before detection (its window is 14x28).
        min_score: lowest score kept.
        min_neighbors: OpenCV's grouping threshold.
    """

    name = "cascade"

    def __init__(self, upscale: float = 1.0, min_score: float = 0.5, min_neighbors: int = 3) -> None:
        data = getattr(cv2, "data", None)
        path = Path(getattr(data, "haarcascades", "")) / "haarcascade_fullbody.xml"
        if not path.is_file():
            raise TeacherError(f"no teacher available: {path} is missing from this OpenCV installation")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise TeacherError(f"no teacher available: OpenCV could not load {path}")
        self.upscale = float(upscale)
        self.min_score = float(min_score)
        self.min_neighbors = int(min_neighbors)

    def __call__(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[H, W, 3]`` uint8 BGR -> ``(boxes [N, 4] xyxy, scores [N])`` in frame pixels."""
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        if self.upscale != 1.0:
            grey = cv2.resize(grey, None, fx=self.upscale, fy=self.upscale)
        rects, _, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=1.05, minNeighbors=self.min_neighbors, outputRejectLevels=True
        )
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        r = np.asarray(rects, np.float64).reshape(-1, 4) / self.upscale
        scores = _squash(np.asarray(weights, np.float64).reshape(-1), 1.0)
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1).astype(np.float32)
        keep = scores >= self.min_score
        return boxes[keep], scores[keep]


TEACHERS: dict[str, Callable[..., Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]] = {
    "hog": HogPeopleDetector,
    "cascade": CascadeFullBodyDetector,
}


def make_teacher(name: str, **kwargs) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The teacher registered as ``name`` (``hog`` or ``cascade``), built with ``kwargs``.

    Raises:
        TeacherError: unknown name, or the detector is not in this OpenCV installation.
    """
    if name not in TEACHERS:
        raise TeacherError(f"unknown teacher {name!r}; choose one of {sorted(TEACHERS)}")
    return TEACHERS[name](**kwargs)
