"""`ibntrack track --cmc` and `--interpolate` end to end on a tiny model and a shaking synthetic camera."""

import numpy as np
import pytest

from ibntrack.cli import main
from ibntrack.data.mot import read_results
from ibntrack.data.synth import generate_sequence
from ibntrack.engine.infer import Tracker
from tests.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", 3.0)


def test_track_with_cmc_and_interpolation(ckpt, tmp_path):
    seq = generate_sequence(
        tmp_path / "data", frames=6, objects=3, size=(96, 64), seed=2, name="s", camera="shake"
    )
    out = tmp_path / "out"
    code = main(
        [
            "track",
            str(seq),
            "--weights",
            str(ckpt),
            "--out",
            str(out),
            "--cmc",
            "sparse",
            "--interpolate",
            "linear",
        ]
    )
    assert code == 0
    rows = read_results(out / "s.txt")
    assert len(rows) and rows[:, 0].min() >= 1 and rows[:, 0].max() <= 6
    for tid in np.unique(rows[:, 1]):  # linear interpolation: no track has a gap of 1-20 frames left
        frames = np.sort(rows[rows[:, 1] == tid, 0])
        assert (np.diff(frames) == 1).all()


def test_tracker_estimates_a_warp_per_frame(ckpt, tmp_path, monkeypatch):
    seq = generate_sequence(
        tmp_path / "data", frames=3, objects=2, size=(96, 64), seed=3, name="p", camera="pan"
    )
    tracker = Tracker.from_checkpoint(ckpt, cmc="ecc")
    seen = []
    original = tracker.mot.update
    monkeypatch.setattr(
        tracker.mot, "update", lambda *a, warp=None: seen.append(warp) or original(*a, warp=warp)
    )
    import cv2

    for f in (1, 2, 3):
        tracker.update(cv2.imread(str(seq / "img1" / f"{f:06d}.jpg")))
    assert len(seen) == 3 and all(w.shape == (2, 3) for w in seen)
    np.testing.assert_allclose(seen[0], np.eye(2, 3))  # first frame: identity
    tracker.reset()
    assert tracker.gmc._prev is None
