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


def test_gsi_smooths_jitter():
    f = np.arange(1, 41)
    x = 5.0 * f + np.where(f % 2, 2.0, -2.0)  # a straight walk with ±2 px jitter
    rows = np.column_stack([f, np.ones(40), x, np.zeros(40), np.full(40, 10), np.full(40, 20), np.ones(40)])
    out = interpolate_tracks(rows, "gsi", tau=2.0)
    inner = slice(8, 32)  # away from the ends (the kernel is one-sided there)
    assert np.abs(out[inner, 2] - 5.0 * f[inner]).max() < 0.2
    assert np.abs(x[inner] - 5.0 * f[inner]).max() == 2.0


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
