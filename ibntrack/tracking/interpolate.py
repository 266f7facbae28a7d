"""Offline post-processing of tracking results: fill short gaps of tracks (linear or Gaussian-smoothed).

An online tracker reports nothing while a target is occluded or missed; when the same identity comes
back within ``max_gap`` frames, the missing boxes can be filled in afterwards:

- ``"linear"``: each coordinate (x, y, w, h) is interpolated linearly between the frames before and after
  the gap (filled rows get the lower of the two scores).
- ``"gsi"``: linear filling, then a Gaussian-process regression of each coordinate over time with an
  RBF kernel (StrongSORT's Gaussian-smoothed interpolation: length scale ``clip(τ·log(τ³/n), 1/τ, τ²)``
  for a track of ``n`` boxes, ``τ = tau``), with a small noise term so the boxes are smoothed a little,
  not averaged over many frames (a moving camera makes image trajectories jerky; a wide average then
  misplaces every box).

Rows are MOTChallenge results ``frame, id, x, y, w, h, score`` (optionally a class column last), as
:func:`ibntrack.data.motio.read_results` gives them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ibntrack.data.motio import read_results, write_results

__all__ = ["INTERPOLATIONS", "interpolate_file", "interpolate_tracks"]

INTERPOLATIONS = ("linear", "gsi")


def interpolate_tracks(
    rows: np.ndarray, method: str = "linear", max_gap: int = 20, tau: float = 10.0
) -> np.ndarray:
    """Fill gaps of at most ``max_gap`` missing frames in every track.

    Args:
        rows: ``[N, 7]`` (or ``[N, 8]`` with a class column) ``frame, id, x, y, w, h, score``.
        method: ``"linear"`` or ``"gsi"`` (linear, then Gaussian smoothing of the whole track).
        max_gap: longest run of missing frames that is filled (a gap of ``g`` missing frames lies between
            frames ``f`` and ``f + g + 1``); longer gaps are left alone.
        tau: ``"gsi"``: kernel width in frames.

    Returns:
        New ``[M, 7]`` (or ``[M, 8]``) float64 rows, ``M >= N``, sorted by frame then id.
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {INTERPOLATIONS}, got {method!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise ValueError(f"max_gap must be an int >= 0, got {max_gap!r}")
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, arr.shape[1] if arr.ndim == 2 else 7)
    if arr.ndim != 2 or arr.shape[1] not in (7, 8):
        raise ValueError(f"rows must have shape [N, 7] or [N, 8], got {list(arr.shape)}")
    out = []
    for tid in np.unique(arr[:, 1]):
        track = arr[arr[:, 1] == tid]
        track = track[np.argsort(track[:, 0], kind="stable")]
        track = track[np.concatenate([[True], np.diff(track[:, 0]) > 0])]  # one row per frame
        filled = _fill_linear(track, max_gap)
        if method == "gsi" and len(filled) > 2:
            filled = _smooth(filled, tau, max_gap)
        out.append(filled)
    res = np.concatenate(out)
    return res[np.lexsort((res[:, 1], res[:, 0]))]


def _fill_linear(track: np.ndarray, max_gap: int) -> np.ndarray:
    """One track (sorted, unique frames): rows added for gaps of at most ``max_gap`` frames."""
    frames = track[:, 0]
    gaps = np.diff(frames) - 1  # missing frames after each row
    parts = [track[:1]]
    for i in np.arange(len(gaps)):
        g = int(gaps[i])
        if 0 < g <= max_gap:
            a, b = track[i], track[i + 1]
            w = (np.arange(1, g + 1) / (g + 1))[:, None]  # [g, 1]
            new = np.repeat(a[None], g, axis=0)
            new[:, 0] = a[0] + np.arange(1, g + 1)
            new[:, 2:6] = (1 - w) * a[2:6] + w * b[2:6]
            new[:, 6] = min(a[6], b[6])
            parts.append(new)
        parts.append(track[i + 1 : i + 2])
    return np.concatenate(parts)


def _smooth(track: np.ndarray, tau: float, max_gap: int) -> np.ndarray:
    """Gaussian-process regression (RBF kernel) of x, y, w, h over time, per run of consecutive frames.

    StrongSORT's GSI: length scale ``clip(τ·log(τ³ / n), 1/τ, τ²)`` for a track of ``n`` rows, a small
    noise term (``_GP_NOISE``, relative to the kernel), posterior mean at the track's frames; the GP models
    the residual of a least-squares straight line (a zero-mean GP would pull a walking target's first
    and last boxes back towards its mean position). Runs longer
    than ``_GP_CHUNK`` rows are solved in consecutive chunks (O(n³) otherwise).
    """
    out = track.copy()
    frames = track[:, 0]
    n = len(track)
    scale = float(np.clip(tau * np.log(tau**3 / n), 1.0 / tau, tau**2))
    breaks = np.flatnonzero(np.diff(frames) > 1) + 1  # gaps longer than max_gap stay gaps
    for seg in np.split(np.arange(n), breaks):
        for start in range(0, seg.size, _GP_CHUNK):
            part = seg[start : start + _GP_CHUNK]
            if part.size < 3:
                continue
            t = frames[part]
            k = np.exp(-0.5 * ((t[:, None] - t[None, :]) / scale) ** 2)  # [S, S]
            y = track[part, 2:6]
            trend = np.column_stack([np.ones(part.size), t - t.mean()])  # a straight walk is the prior mean
            beta, *_ = np.linalg.lstsq(trend, y, rcond=None)
            resid = y - trend @ beta
            alpha = np.linalg.solve(k + _GP_NOISE * np.eye(part.size), resid)
            out[part, 2:6] = trend @ beta + k @ alpha
    return out


_GP_NOISE = 1e-2
_GP_CHUNK = 400


def interpolate_file(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    method: str = "linear",
    max_gap: int = 20,
    tau: float = 10.0,
) -> Path:
    """:func:`interpolate_tracks` on a MOTChallenge result file (written atomically to ``out``, default
    in place). A class column (column 8, not ``-1``) is kept."""
    path = Path(path)
    rows = read_results(path)
    cls = _class_column(path, len(rows))
    if cls is not None:
        rows = np.column_stack([rows, cls])
    filled = interpolate_tracks(rows, method=method, max_gap=max_gap, tau=tau)
    return write_results(Path(out) if out is not None else path, filled)


def _class_column(path: Path, n: int) -> np.ndarray | None:
    """Column 8 of a result file when it holds classes (some value other than −1), else ``None``."""
    vals = []
    for line in path.read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) >= 8 and parts[0].strip():
            vals.append(float(parts[7]))
        elif line.strip():
            return None
    if len(vals) != n or not vals or all(v == -1 for v in vals):
        return None
    return np.asarray(vals)
