"""Camera-motion estimation (GMC) on a shifted random texture."""

import cv2
import numpy as np
import pytest

from ibntrack.tracking.gmc import GMC


def _texture():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((400, 520)) * 255).astype(np.uint8), (7, 7), 2)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def _view(tex, dx, dy):
    """A 320x240 window at (60 + dx, 60 + dy): content moves by (−dx, −dy)."""
    return np.ascontiguousarray(tex[60 + dy : 300 + dy, 60 + dx : 380 + dx])


@pytest.mark.parametrize("method", ["sparse", "ecc"])
def test_translation_is_recovered(method):
    tex = _texture()
    gmc = GMC(method)
    np.testing.assert_allclose(gmc.estimate(_view(tex, 0, 0)), np.eye(2, 3))  # first frame: identity
    warp = gmc.estimate(_view(tex, 8, -6))  # camera moved right 8, up 6: content x − 8, y + 6
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.01)
    np.testing.assert_allclose(warp[:, 2], [-8.0, 6.0], atol=0.3)
    gmc.reset()
    np.testing.assert_allclose(gmc.estimate(_view(tex, 8, -6)), np.eye(2, 3))


def test_sparse_ignores_detection_boxes_and_bad_input():
    tex = _texture()
    gmc = GMC("sparse")
    gmc.estimate(_view(tex, 0, 0), boxes_xyxy=np.array([[0, 0, 160, 240]]))  # left half masked
    warp = gmc.estimate(_view(tex, 4, 0))
    np.testing.assert_allclose(warp[:, 2], [-4.0, 0.0], atol=0.3)
    flat = np.full((240, 320, 3), 128, np.uint8)  # no texture: no corners -> identity, no error
    g = GMC("sparse")
    g.estimate(flat)
    np.testing.assert_allclose(g.estimate(flat), np.eye(2, 3))
    with pytest.raises(ValueError, match="method"):
        GMC("orb")
    with pytest.raises(ValueError, match="frame_bgr"):
        GMC("sparse").estimate(np.zeros((10, 10, 3), np.float32))
    np.testing.assert_allclose(GMC("none").estimate(flat), np.eye(2, 3))
