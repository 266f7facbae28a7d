"""Synthetic camera motion: view-window paths and exact ground truth under the moving camera."""

import numpy as np
import pytest

from ibntrack.data.synth import SynthScene
from ibntrack.data.synth_camera import CAMERAS, camera_path, warp_gt_rows


def test_paths_stay_inside_the_rendered_frame():
    size = (640, 360)
    np.testing.assert_array_equal(camera_path("static", 5, size, 30, 0), [[0, 0, 1]] * 5)
    for kind in CAMERAS[1:]:
        path = camera_path(kind, 300, size, 30, 3)
        x0, y0, z = path.T
        assert (z >= 1.2 - 1e-9).all() and (z <= 1.45 + 1e-9).all()
        assert (x0 >= 0).all() and (x0 <= size[0] - size[0] / z + 1e-9).all()
        assert (y0 >= 0).all() and (y0 <= size[1] - size[1] / z + 1e-9).all()
        assert np.abs(np.diff(x0)).max() > 0.5  # it moves
    pan = camera_path("pan", 241, size, 30, 0)
    assert pan[0, 0] == 0 and pan[120, 0] == pytest.approx(640 - 640 / 1.25)  # half a period: far side
    with pytest.raises(ValueError, match="camera"):
        camera_path("crane", 5, size, 30, 0)


def test_boxes_transform_exactly():
    # zoom 2 at window (100, 50): x' = 2(x − 100), y' = 2(y − 50)
    rows = np.array([[1, 7, 150, 80, 20, 40, 1, 1, 1.0], [1, 8, 600, 80, 20, 40, 1, 1, 1.0]])
    path = np.array([[100.0, 50.0, 2.0]])
    out = warp_gt_rows(rows, path, (640, 360))
    assert out.shape == (1, 9)  # id 8 lands at x' = 1000: out of view, dropped
    np.testing.assert_allclose(out[0, 2:6], [100, 60, 40, 80])
    half_out = warp_gt_rows(np.array([[1, 7, 400, 80, 20, 40, 1, 1, 0.8]]), path, (640, 360))
    # x from 400 to 420 -> x' from 600 to 640: fully inside, visibility kept
    assert half_out[0, 8] == 0.8
    clipped = warp_gt_rows(np.array([[1, 7, 410, 80, 20, 40, 1, 1, 0.8]]), path, (640, 360))
    assert clipped[0, 4] == 20 and clipped[0, 8] == pytest.approx(0.4)  # half the box left the view


def test_scene_with_camera_renders_and_keeps_identities():
    still = SynthScene(frames=6, objects=5, size=(160, 96), seed=1)
    shaky = SynthScene(frames=6, objects=5, size=(160, 96), seed=1, camera="shake")
    assert shaky.render(3).shape == (96, 160, 3)
    assert not np.array_equal(still.render(3), shaky.render(3))
    a, b = still.gt_rows(), shaky.gt_rows()
    assert set(b[:, 1]) <= set(a[:, 1])
    with pytest.raises(ValueError, match="camera"):
        SynthScene(frames=2, objects=1, size=(64, 64), camera="orbit")
