"""Cost matrices and assignment (the identification module).

Every cost is a distance: lower is better, ``inf`` forbids a pair. Rows are tracks, columns detections.
Inputs are never modified.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from ibntrack.tracking.kalman import CHI2INV95, KalmanFilter

try:  # LAPJV is faster; SciPy is the fallback.
    import lap as _lap
except ImportError:  # pragma: no cover - exercised only without the optional dependency
    _lap = None

__all__ = [
    "embedding_distance",
    "fuse_motion",
    "fuse_score",
    "iou_distance",
    "linear_assignment",
]

_EPS = 1e-12
_MAX_COSINE_DISTANCE = 2.0
#: With ``backend="auto"``, problems with ``N + M`` at most this are solved by one SciPy call on the
#: extended matrix (a few µs), without the lone-pair bookkeeping or LAPJV's per-call overhead.
_SMALL_PROBLEM = 32


def iou_distance(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise ``1 − IoU``.

    Args:
        boxes_a: ``[N, 4]`` xyxy, pixels.
        boxes_b: ``[M, 4]`` xyxy, same frame.

    Returns:
        ``[N, M]`` float64 in ``[0, 1]`` (boxes of zero area have IoU 0 with everything).
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)  # [N]
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)  # [M]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])  # [N, M, 2]
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:])  # [N, M, 2] right-bottom corner of the intersection
    wh -= lt
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, _EPS), 0.0)
    return 1.0 - iou


def embedding_distance(track_feats: np.ndarray, det_feats: np.ndarray) -> np.ndarray:
    """Pairwise cosine distance ``1 − cos`` (features are L2-normalised here; zero vectors give 1).

    Args:
        track_feats: ``[N, E]``.
        det_feats: ``[M, E]``.

    Returns:
        ``[N, M]`` float64 clipped to ``[0, 2]``.
    """
    t = np.asarray(track_feats, dtype=np.float64)
    d = np.asarray(det_feats, dtype=np.float64)
    if t.ndim != 2 or d.ndim != 2 or (t.shape[0] and d.shape[0] and t.shape[1] != d.shape[1]):
        raise ValueError(f"track_feats [N, E] and det_feats [M, E] must share E, got {t.shape} and {d.shape}")
    if t.shape[0] == 0 or d.shape[0] == 0:
        return np.zeros((t.shape[0], d.shape[0]))
    t = t / np.maximum(np.sqrt(np.add.reduce(t * t, axis=1)), _EPS)[:, None]
    d = d / np.maximum(np.sqrt(np.add.reduce(d * d, axis=1)), _EPS)[:, None]
    dist = 1.0 - t @ d.T
    return np.minimum(np.maximum(dist, 0.0, out=dist), _MAX_COSINE_DISTANCE, out=dist)


def fuse_motion(
    kf: KalmanFilter,
    cost: np.ndarray,
    tracks_means: np.ndarray,
    tracks_covs: np.ndarray,
    det_measurements: np.ndarray,
    lambda_: float = 0.98,
    gate: bool = True,
    only_position: bool = False,
) -> np.ndarray:
    """Blend a cost with the Kalman motion distance (FairMOT): ``λ·cost + (1 − λ)·d²_Mahalanobis``.

    Args:
        kf: the filter that produced the track states.
        cost: ``[N, M]`` (e.g. cosine distance).
        tracks_means: ``[N, 8]``; tracks_covs: ``[N, 8, 8]`` (predicted to this frame).
        det_measurements: ``[M, 4]`` ``xyah``.
        lambda_: weight of ``cost`` in ``[0, 1]``.
        gate: set pairs whose squared Mahalanobis distance exceeds the chi-square 0.95 quantile
            (``CHI2INV95[4]``, or ``[2]`` with ``only_position``) to ``inf``.
        only_position: measure motion on ``(cx, cy)`` only.

    Returns:
        New ``[N, M]`` float64 cost.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_!r}")
    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return cost.copy()
    maha = kf.multi_gating_distance(tracks_means, tracks_covs, det_measurements, only_position)
    if maha.shape != cost.shape:
        raise ValueError(f"cost must be [N, M] = {maha.shape} (tracks × detections), got {cost.shape}")
    fused = lambda_ * cost + (1.0 - lambda_) * maha
    if gate:
        fused[maha > CHI2INV95[2 if only_position else 4]] = np.inf
    return fused


def fuse_score(cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Weight a ``1 − similarity`` cost by detection confidence (ByteTrack): ``1 − (1 − cost)·score``.

    Args:
        cost: ``[N, M]`` with values in ``[0, 1]``.
        scores: ``[M]`` detection scores in ``[0, 1]``.

    Returns:
        New ``[N, M]`` float64 cost.
    """
    cost = np.asarray(cost, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if cost.ndim != 2 or scores.shape[0] != cost.shape[1]:
        raise ValueError(f"scores must have one entry per column of cost {cost.shape}, got {scores.shape}")
    return 1.0 - (1.0 - cost) * scores[None, :]


def linear_assignment(
    cost: np.ndarray, thresh: float, backend: Literal["auto", "lap", "scipy"] = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching where pairs costing more than ``thresh`` stay unmatched.

    Solves the rectangular problem extended with "unmatched" options costing ``thresh / 2`` per row and
    per column (``lap.lapjv(extend_cost=True, cost_limit=thresh)``), so a pair is used only when its cost
    is at most ``thresh``; non-finite costs forbid a pair. Both backends solve the same problem.

    A pair costing more than ``thresh`` is never in an optimal solution (leaving both unmatched costs
    ``thresh``), so only the feasible pairs matter: a feasible pair alone in its row and its column is
    matched without the solver, and the solver gets the rows and columns that have a choice.

    Args:
        cost: ``[N, M]``.
        thresh: positive finite cost limit.
        backend: ``"lap"`` (LAPJV), ``"scipy"`` (``linear_sum_assignment`` on the extended matrix) or
            ``"auto"`` (SciPy for small problems, ``N + M <= 32``; else lap if installed).

    Returns:
        ``matches [K, 2]`` int64 (row, column) sorted by row, ``unmatched_a [N − K]`` rows,
        ``unmatched_b [M − K]`` columns.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-d [N, M] array, got shape {cost.shape}")
    if not (isinstance(thresh, int | float | np.floating) and math.isfinite(thresh) and thresh > 0):
        raise ValueError(f"thresh must be a positive finite number, got {thresh!r}")
    auto = backend == "auto"
    if auto:
        backend = "lap" if _lap is not None else "scipy"
    if backend not in ("lap", "scipy"):
        raise ValueError(f"backend must be 'auto', 'lap' or 'scipy', got {backend!r}")
    if backend == "lap" and _lap is None:
        raise ValueError("backend='lap' needs the 'lap' package; use backend='scipy'")
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    feasible = cost <= thresh  # [N, M]; inf and nan never are
    if not feasible.any():
        return np.empty((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    if auto and n + m <= _SMALL_PROBLEM:  # tiny: one SciPy solve beats the bookkeeping and LAPJV's overhead
        row_to_col = _scipy_extended(np.where(feasible, cost, thresh + 1.0), thresh)
        rows = np.flatnonzero(row_to_col >= 0)
        rows = rows[feasible[rows, row_to_col[rows]]]
        return _result(rows, row_to_col[rows], n, m)
    row_deg = np.count_nonzero(feasible, axis=1)  # [N]
    col_deg = np.count_nonzero(feasible, axis=0)  # [M]
    row_to_col = np.full(n, -1, dtype=np.int64)
    lone_rows, lone_cols = np.nonzero(feasible & (row_deg == 1)[:, None] & (col_deg == 1)[None, :])
    row_to_col[lone_rows] = lone_cols
    if lone_rows.size < np.count_nonzero(row_deg):  # some rows have a choice: solve those
        col_free = col_deg > 0
        col_free[lone_cols] = False
        rows, cols = np.flatnonzero((row_deg > 0) & (row_to_col < 0)), np.flatnonzero(col_free)
        sub = cost[np.ix_(rows, cols)]  # [R, C]
        # Every infeasible pair costs the same (thresh + 1): it keeps the solver's numbers small.
        sub = np.where(feasible[np.ix_(rows, cols)], sub, thresh + 1.0)
        if backend == "lap":
            _, sub_to_col, _ = _lap.lapjv(sub, extend_cost=True, cost_limit=thresh)
        else:
            sub_to_col = _scipy_extended(sub, thresh)
        ok = np.flatnonzero(sub_to_col >= 0)
        ok = ok[sub[ok, sub_to_col[ok]] <= thresh]
        row_to_col[rows[ok]] = cols[sub_to_col[ok]]
    rows = np.flatnonzero(row_to_col >= 0)
    return _result(rows, row_to_col[rows], n, m)


def _result(rows: np.ndarray, cols: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(matches [K, 2], unmatched rows, unmatched columns)`` from matched ``rows`` (sorted) and ``cols``."""
    matches = np.empty((rows.size, 2), dtype=np.int64)
    matches[:, 0] = rows
    matches[:, 1] = cols
    row_free = np.ones(n, dtype=bool)
    row_free[rows] = False
    col_free = np.ones(m, dtype=bool)
    col_free[cols] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)


def _scipy_extended(cost: np.ndarray, thresh: float) -> np.ndarray:
    """``row -> column`` (−1 unmatched) on ``[[C, thresh/2], [thresh/2, 0]]`` of size ``(N+M)²``."""
    n, m = cost.shape
    ext = np.zeros((n + m, m + n))
    ext[:n, :m] = cost
    ext[:n, m:] = thresh / 2.0  # row i left unmatched
    ext[n:, :m] = thresh / 2.0  # column j left unmatched
    row_ind, col_ind = linear_sum_assignment(ext)
    row_to_col = np.full(n, -1, dtype=np.int64)
    real = (row_ind < n) & (col_ind < m)
    row_to_col[row_ind[real]] = col_ind[real]
    return row_to_col
