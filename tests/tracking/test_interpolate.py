"""Offline gap filling of result files (linear, Gaussian-smoothed)."""

import numpy as np
import pytest

from ibntrack.data.motio import read_results, write_results
from ibntrack.tracking.interpolate import interpolate_file, interpolate_tracks


def test_linear_fills_short_gaps_only():
    rows = np.array(
        [
            [1, 1, 0, 0, 10, 20, 0.9],
            [4, 1, 30, 3, 10, 20, 0.6],  # 2 missing frames: filled
            [30, 1, 30, 3, 10, 20, 0.8],  # 25 missing frames > max_gap 20: left alone
            [2, 2, 5, 5, 5, 5, 0.5],
        ]
    )
    out = interpolate_tracks(rows, "linear", max_gap=20)
    t1 = out[out[:, 1] == 1]
    assert t1[:, 0].tolist() == [1, 2, 3, 4, 30]
    np.testing.assert_allclose(t1[1, 2:6], [10, 1, 10, 20])  # a third of the way
    np.testing.assert_allclose(t1[2, 2:6], [20, 2, 10, 20])
    assert t1[1, 6] == 0.6  # the lower score of the two ends
    assert out[:, 0].tolist() == sorted(out[:, 0].tolist())
    assert len(interpolate_tracks(rows, max_gap=1)) == 4


def test_gsi_keeps_smooth_tracks_and_damps_jitter():
    f = np.arange(1, 41)
    line = 5.0 * f
    jitter = np.where(f % 2, 2.0, -2.0)  # ±2 px, period 2 frames: the highest frequency there is

    def rows(x):
        return np.column_stack(
            [f, np.ones(40), x, np.zeros(40), np.full(40, 10), np.full(40, 20), np.ones(40)]
        )

    smooth = interpolate_tracks(rows(line), "gsi")
    np.testing.assert_allclose(smooth[:, 2], line, atol=0.05)  # a straight walk stays put
    damped = interpolate_tracks(rows(line + jitter), "gsi")
    inner = slice(8, 32)
    assert np.abs(damped[inner, 2] - line[inner]).max() < 1.9  # jitter damped, not removed (tiny noise)
    gap = rows(line)[np.r_[0:10, 15:40]]  # frames 11-15 missing
    filled = interpolate_tracks(gap, "gsi")
    assert filled[:, 0].tolist() == f.tolist()
    np.testing.assert_allclose(filled[10:15, 2], line[10:15], atol=0.05)


def test_file_round_trip_and_bad_arguments(tmp_path):
    path = tmp_path / "seq.txt"
    write_results(path, [[1, 7, 0, 0, 10, 10, 0.9], [3, 7, 20, 0, 10, 10, 0.9]])
    interpolate_file(path)
    rows = read_results(path)
    assert rows[:, 0].tolist() == [1, 2, 3] and rows[1, 2] == 10
    with pytest.raises(ValueError, match="method"):
        interpolate_tracks(rows, "spline")
    with pytest.raises(ValueError, match="max_gap"):
        interpolate_tracks(rows, max_gap=-1)
