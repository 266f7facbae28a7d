"""Global motion compensation (camera-motion estimation) from consecutive frames, for the tracker.

A moving camera moves every target in the image at once; a constant-velocity Kalman filter sees that as
a jump of every track. :class:`GMC` estimates the image motion between the previous frame and the
current one as a 2×3 affine ``[A | t]`` (previous-frame pixels → current-frame pixels), which
:meth:`ibntrack.tracking.tracker.MultiObjectTracker.update` applies to the predicted Kalman means and
covariances (``warp=``). Methods (BoT-SORT's GMC):

- ``"sparse"``: corners (``cv2.goodFeaturesToTrack``) of the previous grey frame, downscaled, followed
  into the current one by pyramidal Lucas–Kanade optical flow, and a RANSAC partial affine
  (rotation, uniform scale, translation: ``cv2.estimateAffinePartial2D``) fitted to the tracked points.
  Corners inside detection boxes are left out: the targets move on their own.
- ``"ecc"``: ``cv2.findTransformECC`` (enhanced correlation coefficient) with a Euclidean motion model on
  the downscaled grey frames; slower, no features needed.
- ``"none"``: the identity (no compensation).

Any failure (first frame, too few points, ECC not converging, a frame of another size) gives the
identity: compensation can only be skipped, never fail a stream.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["GMC", "GMC_METHODS", "identity_warp"]

log = logging.getLogger(__name__)

GMC_METHODS = ("none", "sparse", "ecc")
_MIN_POINTS = 8  # fewer tracked points than this: identity


def identity_warp() -> np.ndarray:
    """The ``[2, 3]`` float64 identity affine."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class GMC:
    """Camera-motion estimator; one per stream (it keeps the previous frame).

    Args:
        method: ``"sparse"`` (default), ``"ecc"`` or ``"none"``.
        downscale: frames are shrunk by this integer factor before estimation (speed); the translation
            is scaled back to full-resolution pixels.
        max_corners: ``"sparse"``: at most this many corners.
        ecc_iterations: ``"ecc"``: iteration limit.
    """

    def __init__(
        self, method: str = "sparse", downscale: int = 2, max_corners: int = 1000, ecc_iterations: int = 100
    ) -> None:
        if method not in GMC_METHODS:
            raise ValueError(f"method must be one of {GMC_METHODS}, got {method!r}")
        if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
            raise ValueError(f"downscale must be an int >= 1, got {downscale!r}")
        if isinstance(max_corners, bool) or not isinstance(max_corners, int) or max_corners < _MIN_POINTS:
            raise ValueError(f"max_corners must be an int >= {_MIN_POINTS}, got {max_corners!r}")
        if isinstance(ecc_iterations, bool) or not isinstance(ecc_iterations, int) or ecc_iterations < 1:
            raise ValueError(f"ecc_iterations must be an int >= 1, got {ecc_iterations!r}")
        self.method = method
        self.downscale = downscale
        self.max_corners = max_corners
        self.ecc_iterations = ecc_iterations
        self._prev: np.ndarray | None = None  # previous downscaled grey frame
        self._prev_points: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new stream starts)."""
        self._prev = None
        self._prev_points = None

    def estimate(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray | None = None) -> np.ndarray:
        """The affine from the previous frame to ``frame_bgr`` (identity on the first frame or failure).

        Args:
            frame_bgr: ``[H, W, 3]`` uint8 BGR (or ``[H, W]`` grey) frame.
            boxes_xyxy: ``[N, 4]`` detection boxes of this frame (full-resolution pixels) whose pixels
                are ignored by ``"sparse"``; ``None``: use the whole frame.

        Returns:
            ``[2, 3]`` float64 ``[A | t]`` in full-resolution pixels.
        """
        if self.method == "none":
            return identity_warp()
        import cv2

        frame = np.asarray(frame_bgr)
        if frame.ndim not in (2, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame_bgr must be a uint8 [H, W, 3] or [H, W] image, got {frame.dtype} {frame.shape}"
            )
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.downscale > 1:
            h, w = grey.shape
            grey = cv2.resize(grey, (max(w // self.downscale, 1), max(h // self.downscale, 1)))
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape:
            self._prev_points = self._corners(grey, boxes_xyxy) if self.method == "sparse" else None
            return identity_warp()
        if self.method == "ecc":
            warp = self._ecc(prev, grey)
        else:
            warp = self._sparse(prev, grey)
            self._prev_points = self._corners(grey, boxes_xyxy)
        if warp is None:
            return identity_warp()
        warp[:, 2] *= self.downscale
        return warp

    # ------------------------------------------------------------------ methods
    def _corners(self, grey: np.ndarray, boxes_xyxy: np.ndarray | None) -> np.ndarray | None:
        import cv2

        h, w = grey.shape
        mask = np.zeros_like(grey)
        my, mx = int(0.02 * h), int(0.02 * w)  # borders: warped-in content
        mask[my : h - my, mx : w - mx] = 255
        if boxes_xyxy is not None and len(boxes_xyxy):
            b = np.round(np.asarray(boxes_xyxy, dtype=np.float64) / self.downscale).astype(np.int64)
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
            for x1, y1, x2, y2 in b.tolist():
                mask[y1:y2, x1:x2] = 0
        pts = cv2.goodFeaturesToTrack(
            grey, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=1, blockSize=3, mask=mask
        )
        return pts

    def _sparse(self, prev: np.ndarray, grey: np.ndarray) -> np.ndarray | None:
        import cv2

        pts = self._prev_points
        if pts is None or len(pts) < _MIN_POINTS:
            return None
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, pts, None)
        if nxt is None:
            return None
        ok = status.reshape(-1) == 1
        if ok.sum() < _MIN_POINTS:
            return None
        warp, inliers = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC)
        if warp is None or inliers is None or int(inliers.sum()) < _MIN_POINTS:
            return None
        return warp.astype(np.float64)

    def _ecc(self, prev: np.ndarray, grey: np.ndarray) -> np.ndarray | None:
        import cv2

        warp = np.eye(2, 3, dtype=np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, self.ecc_iterations, 1e-5)
        try:
            _, warp = cv2.findTransformECC(prev, grey, warp, cv2.MOTION_EUCLIDEAN, criteria, None, 1)
        except cv2.error as exc:  # did not converge
            log.debug("ECC failed: %s", exc)
            return None
        # With template = prev and input = current, ECC finds W with current(W·x) ≈ prev(x): a point x
        # of the previous frame is at W·x now, the previous → current map.
        return warp.astype(np.float64)
