"""Constant-velocity Kalman filter for boxes in image space (the tracking module's motion predictor).

The 8-d state is ``(cx, cy, a, h, vcx, vcy, va, vh)``: box centre ``(cx, cy)`` in pixels, aspect ratio
``a = w / h``, height ``h`` in pixels, and their velocities per frame. A measurement is the 4-d
``(cx, cy, a, h)`` (``xyah``). Process and measurement noise standard deviations are proportional to the
box height (DeepSORT / ByteTrack), so large boxes may move and change more than small ones; the aspect
ratio gets small fixed deviations because it barely changes.

The filter is stateless: it holds only constants, and every method takes and returns ``(mean, cov)``
numpy arrays (the ``multi_*`` methods ``[N, 8]`` / ``[N, 8, 8]`` stacks); the tracks' states live in
:class:`ibntrack.tracking.table.TrackTable`. With this filter's diagonal noise models the four coordinates
never mix, so innovation covariances are diagonal and inverted elementwise (any other covariance takes
the general batched solve).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHI2INV95", "KalmanFilter", "xyah_to_xyxy", "xyxy_to_xyah"]

#: 0.95 quantile of the chi-square distribution with ``k`` degrees of freedom (``scipy.stats.chi2.ppf(0.95,
#: k)``), the gate on a squared Mahalanobis distance in ``k`` measurement dimensions: 2 for position only,
#: 4 for the full ``(cx, cy, a, h)`` measurement.
CHI2INV95: dict[int, float] = {
    1: 3.8415,
    2: 5.9915,
    3: 7.8147,
    4: 9.4877,
    5: 11.0705,
    6: 12.5916,
    7: 14.0671,
    8: 15.5073,
    9: 16.9190,
}

_NDIM = 4  # measurement dimensions (cx, cy, a, h)
_DIAG4 = np.arange(_NDIM)  # diagonal indices of a [4, 4] matrix
_DIAG8 = np.arange(2 * _NDIM)  # ... of an [8, 8] one
_OFF_DIAGONAL = {k: ~np.eye(k, dtype=bool).reshape(-1) for k in (2, _NDIM)}  # flat [k, k] masks
_MIN_HEIGHT = 1e-6  # pixels; keeps the aspect ratio finite for degenerate boxes

# Fixed standard deviations of the aspect ratio (dimensionless; it does not scale with height).
_ASPECT_STD_PROCESS = 1e-2
_ASPECT_VEL_STD_PROCESS = 1e-5
_ASPECT_STD_MEASUREMENT = 1e-1

# The first covariance is wider than the process noise: position ×2, velocity ×10 (unknown at birth).
_INIT_POSITION_FACTOR = 2.0
_INIT_VELOCITY_FACTOR = 10.0


def _diagonal(mats: np.ndarray) -> np.ndarray | None:
    """The diagonals ``[N, k]`` of ``mats [N, k, k]`` if every off-diagonal entry is 0, else ``None``.

    With diagonal initial, process and measurement noise covariances (this filter's), the four
    coordinates never mix: the innovation covariances stay exactly diagonal and are inverted elementwise.
    """
    n, k, _ = mats.shape
    flat = mats.reshape(n, k * k)  # [N, k·k]
    off = _OFF_DIAGONAL.get(k)
    if off is None:
        off = ~np.eye(k, dtype=bool).reshape(-1)
    if flat[:, off].any():
        return None
    return flat[:, :: k + 1]


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """Convert boxes ``(x1, y1, x2, y2)`` to Kalman measurements ``(cx, cy, w / h, h)``.

    Args:
        boxes: ``[..., 4]`` xyxy, pixels.

    Returns:
        ``[..., 4]`` float64 ``xyah`` (new array; the input is not modified).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    out = np.empty(boxes.shape[:-1] + (4,))
    w = boxes[..., 2] - boxes[..., 0]
    h = np.maximum(boxes[..., 3] - boxes[..., 1], _MIN_HEIGHT)
    out[..., 0] = boxes[..., 0] + 0.5 * w
    out[..., 1] = boxes[..., 1] + 0.5 * h
    out[..., 2] = w / h
    out[..., 3] = h
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """Convert ``(cx, cy, a, h)`` (extra trailing entries such as velocities are ignored) to xyxy.

    Args:
        xyah: ``[..., >=4]``; only the first four entries of the last axis are read.

    Returns:
        ``[..., 4]`` float64 xyxy.
    """
    xyah = np.asarray(xyah, dtype=np.float64)
    cx, cy, a, h = xyah[..., 0], xyah[..., 1], xyah[..., 2], xyah[..., 3]
    w = a * h
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


class KalmanFilter:
    """Constant-velocity Kalman filter on ``(cx, cy, a, h, vcx, vcy, va, vh)``.

    Args:
        std_weight_position: standard deviation of position (and height) noise per pixel of box height.
        std_weight_velocity: standard deviation of velocity noise per pixel of box height.
        dt: time step between frames (1 = velocities are per frame).
        process_scale: frames of the reference rate (30 fps) per frame of this stream, ``30 / fps``
            (see :meth:`for_frame_rate`): the process noise of one step is that of ``process_scale``
            reference steps — position deviation ``× process_scale``, velocity deviation
            ``× process_scale²`` (velocities are per frame, so a velocity change over ``k`` reference
            frames counts ``k`` times in per-frame units and accumulates over ``k`` frames). Measurement
            noise does not change.
    """

    @classmethod
    def for_frame_rate(cls, frame_rate: float, reference: float = 30.0) -> KalmanFilter:
        """The default filter with process noise scaled for ``frame_rate`` (tuned at ``reference`` fps)."""
        if not (np.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f"frame_rate must be a positive number, got {frame_rate!r}")
        return cls(process_scale=max(reference / float(frame_rate), 1.0))

    def __init__(
        self,
        std_weight_position: float = 1.0 / 20,
        std_weight_velocity: float = 1.0 / 160,
        dt: float = 1.0,
        process_scale: float = 1.0,
    ) -> None:
        for name, value in (
            ("std_weight_position", std_weight_position),
            ("std_weight_velocity", std_weight_velocity),
            ("dt", dt),
            ("process_scale", process_scale),
        ):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.process_scale = float(process_scale)
        motion = np.eye(2 * _NDIM)
        motion[:_NDIM, _NDIM:] = dt * np.eye(_NDIM)
        self._motion_mat = motion  # [8, 8] F: x_{t+1} = F x_t
        # The measurement matrix H = [I₄ 0] (z = H x) is applied by slicing: H x = x[:4].
        # Noise std = slope · h + offset per state entry: proportional to the box height, except the aspect
        # ratio's fixed deviations.
        wp, wv = self.std_weight_position, self.std_weight_velocity
        ps, vs = self.process_scale, self.process_scale**2
        self._process_std_slope = np.array([wp * ps, wp * ps, 0.0, wp * ps, wv * vs, wv * vs, 0.0, wv * vs])
        # Births: position as measured; the unknown velocity may be larger per frame at low rates.
        self._init_std_slope = np.array([wp, wp, 0.0, wp, wv * ps, wv * ps, 0.0, wv * ps])
        self._process_std_offset = np.array(
            [0.0, 0.0, _ASPECT_STD_PROCESS, 0.0, 0.0, 0.0, _ASPECT_VEL_STD_PROCESS, 0.0]
        )
        self._measurement_std_slope = np.array([wp, wp, 0.0, wp])
        self._measurement_std_offset = np.array([0.0, 0.0, _ASPECT_STD_MEASUREMENT, 0.0])

    # ------------------------------------------------------------------ noise models
    def _process_std(self, h: np.ndarray) -> np.ndarray:
        """Process noise std ``[N, 8]`` for heights ``h [N]``."""
        return h[:, None] * self._process_std_slope + self._process_std_offset

    def _measurement_std(self, h: np.ndarray) -> np.ndarray:
        """Measurement noise std ``[N, 4]`` for heights ``h [N]``."""
        return h[:, None] * self._measurement_std_slope + self._measurement_std_offset

    # ------------------------------------------------------------------ filter steps
    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start a track from an unassociated measurement.

        Args:
            measurement: ``[4]`` ``(cx, cy, a, h)``.

        Returns:
            ``mean [8]`` (velocities 0) and ``cov [8, 8]`` (diagonal).
        """
        means, covs = self.multi_initiate(np.asarray(measurement, dtype=np.float64).reshape(1, _NDIM))
        return means[0], covs[0]

    def multi_initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start ``N`` tracks at once (see :meth:`initiate`).

        Args:
            measurements: ``[N, 4]`` ``(cx, cy, a, h)``.

        Returns:
            ``means [N, 8]`` (velocities 0) and diagonal ``covs [N, 8, 8]``.
        """
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        n = z.shape[0]
        means = np.zeros((n, 2 * _NDIM))
        means[:, :_NDIM] = z
        std = z[:, 3, None] * self._init_std_slope + self._process_std_offset  # [N, 8]
        std[:, :_NDIM] *= _INIT_POSITION_FACTOR
        std[:, _NDIM:] *= _INIT_VELOCITY_FACTOR
        # The aspect ratio keeps its own constants, without the init factors (DeepSORT convention).
        std[:, 2], std[:, 6] = _ASPECT_STD_PROCESS, _ASPECT_VEL_STD_PROCESS
        covs = np.zeros((n, 2 * _NDIM, 2 * _NDIM))
        covs[:, _DIAG8, _DIAG8] = std**2
        return means, covs

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One prediction step for one track: ``mean [8], cov [8, 8] -> mean [8], cov [8, 8]``."""
        means, covs = self.multi_predict(np.asarray(mean)[None], np.asarray(cov)[None])
        return means[0], covs[0]

    def multi_predict(self, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised prediction step for ``N`` tracks.

        Args:
            means: ``[N, 8]``.
            covs: ``[N, 8, 8]``.

        Returns:
            Predicted ``means [N, 8]`` and ``covs [N, 8, 8]`` (new arrays).
        """
        means = np.asarray(means, dtype=np.float64)
        covs = np.asarray(covs, dtype=np.float64)
        std = self._process_std(means[:, 3])  # [N, 8]
        new_means = means @ self._motion_mat.T
        new_covs = self._motion_mat @ covs @ self._motion_mat.T  # [N, 8, 8] F P Fᵀ (a new array)
        new_covs[:, _DIAG8, _DIAG8] += std**2  # + Q (diagonal)
        return new_means, new_covs

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project one state to measurement space: ``-> (mean [4], innovation cov [4, 4])``."""
        pm, pc = self.multi_project(np.asarray(mean)[None], np.asarray(cov)[None])
        return pm[0], pc[0]

    def multi_project(self, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project ``N`` states to measurement space.

        Args:
            means: ``[N, 8]``.
            covs: ``[N, 8, 8]``.

        Returns:
            ``means [N, 4]`` and innovation covariances ``[N, 4, 4]`` (``H P Hᵀ + R``).
        """
        means = np.asarray(means, dtype=np.float64)
        covs = np.asarray(covs, dtype=np.float64)
        # H = [I 0] selects the first four state entries: H x = x[:4], H P Hᵀ = P[:4, :4].
        proj_means = means[:, :_NDIM].copy()  # [N, 4]
        proj_covs = covs[:, :_NDIM, :_NDIM].copy()  # [N, 4, 4]
        proj_covs[:, _DIAG4, _DIAG4] += self._measurement_std(means[:, 3]) ** 2  # + R
        return proj_means, proj_covs

    def update(
        self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correction step for one track.

        Args:
            mean: ``[8]`` predicted state.
            cov: ``[8, 8]`` predicted covariance.
            measurement: ``[4]`` ``(cx, cy, a, h)``.

        Returns:
            Corrected ``mean [8]`` and ``cov [8, 8]``.
        """
        means, covs = self.multi_update(
            np.asarray(mean)[None], np.asarray(cov)[None], np.asarray(measurement)[None]
        )
        return means[0], covs[0]

    def multi_update(
        self, means: np.ndarray, covs: np.ndarray, measurements: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised correction step, track ``i`` with measurement ``i``.

        Args:
            means: ``[N, 8]``; covs: ``[N, 8, 8]``; measurements: ``[N, 4]`` ``xyah``.

        Returns:
            Corrected ``means [N, 8]`` and ``covs [N, 8, 8]``.
        """
        means = np.asarray(means, dtype=np.float64)
        covs = np.asarray(covs, dtype=np.float64)
        z = np.asarray(measurements, dtype=np.float64)
        proj_means, proj_covs = self.multi_project(means, covs)  # [N, 4], [N, 4, 4]
        cross = covs[:, :_NDIM, :]  # [N, 4, 8] = H P (P symmetric, so (P Hᵀ)ᵀ)
        s_diag = _diagonal(proj_covs)
        if s_diag is not None:
            gain = (cross / s_diag[:, :, None]).transpose(0, 2, 1)  # [N, 8, 4] K = P Hᵀ S⁻¹
        else:
            gain = np.linalg.solve(proj_covs, cross).transpose(0, 2, 1)
        innovation = z - proj_means  # [N, 4]
        new_means = means + np.einsum("nij,nj->ni", gain, innovation)
        new_covs = covs - gain @ proj_covs @ gain.transpose(0, 2, 1)
        return new_means, new_covs

    # ------------------------------------------------------------------ gating
    def gating_distance(
        self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray, only_position: bool = False
    ) -> np.ndarray:
        """Squared Mahalanobis distances between one state and ``M`` measurements.

        Args:
            mean: ``[8]``; cov: ``[8, 8]``.
            measurements: ``[M, 4]`` ``xyah``.
            only_position: compare only ``(cx, cy)``; gate with ``CHI2INV95[2]`` instead of ``[4]``.

        Returns:
            ``[M]`` float64.
        """
        return self.multi_gating_distance(
            np.asarray(mean)[None], np.asarray(cov)[None], measurements, only_position
        )[0]

    def multi_gating_distance(
        self, means: np.ndarray, covs: np.ndarray, measurements: np.ndarray, only_position: bool = False
    ) -> np.ndarray:
        """Squared Mahalanobis distances between ``N`` states and ``M`` measurements.

        Args:
            means: ``[N, 8]``; covs: ``[N, 8, 8]``.
            measurements: ``[M, 4]`` ``xyah``.
            only_position: compare only ``(cx, cy)``.

        Returns:
            ``[N, M]`` float64.
        """
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        n, m = np.asarray(means).shape[0], z.shape[0]
        if n == 0 or m == 0:
            return np.zeros((n, m))
        proj_means, proj_covs = self.multi_project(means, covs)
        k = 2 if only_position else _NDIM
        # d² = (z − p)ᵀ S⁻¹ (z − p) = zᵀS⁻¹z − 2 (S⁻¹p)ᵀz + pᵀS⁻¹p: two matrix products instead of a
        # batched [N, M, k] solve. Coordinates are centred first so the three terms stay small.
        centre = z[:, :k].sum(axis=0) / m
        zc = z[:, :k] - centre  # [M, k]
        pc = proj_means[:, :k] - centre  # [N, k]
        s = proj_covs[:, :k, :k]  # [N, k, k]
        s_diag = _diagonal(s)
        if s_diag is not None:  # S⁻¹ = diag(1 / s)
            s_inv = 1.0 / s_diag  # [N, k]
            dist = s_inv @ (zc * zc).T  # [N, M] zᵀS⁻¹z
            s_inv_p = s_inv * pc  # [N, k]
        else:
            s_inv = np.linalg.inv(s)  # [N, k, k]
            zz = (zc[:, :, None] * zc[:, None, :]).reshape(m, k * k)  # [M, k·k] outer products z zᵀ
            dist = s_inv.reshape(n, k * k) @ zz.T  # [N, M] zᵀS⁻¹z
            s_inv_p = np.einsum("nij,nj->ni", s_inv, pc)  # [N, k]
        dist -= 2.0 * (s_inv_p @ zc.T)
        dist += np.einsum("ni,ni->n", s_inv_p, pc)[:, None]
        return np.maximum(dist, 0.0, out=dist)
