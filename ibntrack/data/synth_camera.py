"""Camera motion for the synthetic world: a moving view window over the rendered street, exact boxes.

The street is rendered as by a fixed camera; a moving camera is then a view window of size
``(W / z, H / z)`` at offset ``(x0, y0)`` of that frame, scaled back to ``W × H`` — the affine image map
``x' = z·(x − x0)``, ``y' = z·(y − y0)``. It is a translation plus a uniform zoom, so the ground-truth
boxes transform exactly (corners map to corners); boxes are clipped to the new view, those left with a
side under 2 px are dropped and visibility is multiplied by the fraction of the box still in view.

Kinds (:data:`CAMERAS`), seeded by their own random stream:

- ``static``: the identity (the fixed camera).
- ``pan``: zoom 1.25; the window sweeps across the margin and back, a slow sinusoid (period 8 s).
- ``shake``: zoom 1.25; a hand-held camera: the window centre jitters around the middle with an AR(1)
  process (std ≈ 2 % of the width, fast decay).
- ``drone``: zoom drifting between 1.2 and 1.45 (altitude), the window drifting smoothly (bounded random
  walk with momentum) plus a light shake.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CAMERAS", "camera_path", "view_matrix", "warp_frame", "warp_gt_rows"]

CAMERAS = ("static", "pan", "shake", "drone")
_MIN_SIDE = 2.0  # pixels


def camera_path(kind: str, frames: int, size: tuple[int, int], frame_rate: float, seed: int) -> np.ndarray:
    """Per frame ``(x0, y0, z)``: the view window's top-left corner (pixels of the rendered frame), zoom.

    Args:
        kind: one of :data:`CAMERAS`.
        frames: number of frames.
        size: ``(W, H)`` of the frames.
        frame_rate: frames per second (motion is defined in seconds).
        seed: seed of the camera's random stream.

    Returns:
        ``[frames, 3]`` float64.
    """
    if kind not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {kind!r}")
    w, h = float(size[0]), float(size[1])
    out = np.zeros((frames, 3))
    out[:, 2] = 1.0
    if kind == "static":
        return out
    rng = np.random.default_rng([int(seed), 77])
    t = np.arange(frames) / float(frame_rate)  # seconds
    if kind in ("pan", "shake"):
        z = np.full(frames, 1.25)
        mx, my = w - w / z, h - h / z  # [F] margins
        if kind == "pan":
            x0 = 0.5 * mx * (1.0 - np.cos(2 * np.pi * t / 8.0))
            y0 = 0.5 * my + 0.15 * my * np.sin(2 * np.pi * t / 5.0)
        else:
            jitter = _ar1(rng, frames, 0.6, 0.02 * w), _ar1(rng, frames, 0.6, 0.02 * h)
            x0, y0 = 0.5 * mx + jitter[0], 0.5 * my + jitter[1]
    else:  # drone
        z = 1.325 + 0.125 * np.sin(2 * np.pi * t / 12.0 + rng.uniform(0, 2 * np.pi))
        mx, my = w - w / z, h - h / z
        drift = [_drift(rng, frames, 0.9, 0.15) for _ in range(2)]  # in [0, 1] of the margin
        shake = _ar1(rng, frames, 0.5, 0.004 * w), _ar1(rng, frames, 0.5, 0.004 * h)
        x0, y0 = drift[0] * mx + shake[0], drift[1] * my + shake[1]
    out[:, 0] = np.clip(x0, 0.0, mx)
    out[:, 1] = np.clip(y0, 0.0, my)
    out[:, 2] = z
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, std: float) -> np.ndarray:
    """AR(1) samples with stationary deviation ``std``."""
    e = rng.normal(0.0, std * np.sqrt(1 - phi**2), n)
    x = np.zeros(n)
    for i in range(n):
        x[i] = (phi * x[i - 1] if i else 0.0) + e[i]
    return x


def _drift(rng: np.random.Generator, n: int, momentum: float, step: float) -> np.ndarray:
    """A smooth walk in ``[0, 1]`` (reflected at the ends), starting in the middle."""
    pos, vel = 0.5, 0.0
    out = np.empty(n)
    for i in range(n):
        vel = momentum * vel + rng.normal(0.0, step / 30.0)
        pos += vel
        if pos < 0.0 or pos > 1.0:
            vel = -vel
            pos = min(max(pos, 0.0), 1.0)
        out[i] = pos
    return out


def view_matrix(x0: float, y0: float, z: float) -> np.ndarray:
    """The ``[2, 3]`` image map of a view window: ``x' = z·(x − x0)``, ``y' = z·(y − y0)``."""
    return np.array([[z, 0.0, -z * x0], [0.0, z, -z * y0]])


def warp_frame(image: np.ndarray, x0: float, y0: float, z: float) -> np.ndarray:
    """The camera's view of a rendered ``image [H, W, 3]`` (same size out)."""
    if x0 == 0.0 and y0 == 0.0 and z == 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, view_matrix(x0, y0, z), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def warp_gt_rows(rows: np.ndarray, path: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Ground-truth rows ``frame, id, x, y, w, h, flag, class, visibility`` seen by the moving camera."""
    if rows.size == 0:
        return rows
    rows = rows.copy()
    f = rows[:, 0].astype(np.int64) - 1
    x0, y0, z = path[f, 0], path[f, 1], path[f, 2]
    x1, y1 = z * (rows[:, 2] - x0), z * (rows[:, 3] - y0)
    x2, y2 = x1 + z * rows[:, 4], y1 + z * rows[:, 5]
    area = np.maximum((x2 - x1) * (y2 - y1), 1e-9)
    w, h = size
    cx1, cy1, cx2, cy2 = np.clip(x1, 0, w), np.clip(y1, 0, h), np.clip(x2, 0, w), np.clip(y2, 0, h)
    bw, bh = np.round(cx2 - cx1, 2), np.round(cy2 - cy1, 2)
    inside = (cx2 - cx1) * (cy2 - cy1) / area
    rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5] = np.round(cx1, 2), np.round(cy1, 2), bw, bh
    rows[:, 8] = np.round(rows[:, 8] * np.clip(inside, 0.0, 1.0), 4)
    return rows[(bw >= _MIN_SIDE) & (bh >= _MIN_SIDE)]
