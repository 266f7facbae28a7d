"""Letterbox, tensor conversion and box-preserving augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ibntrack.data.transforms import (
    MEAN,
    STD,
    AugmentConfig,
    augment,
    horizontal_flip,
    hsv_jitter,
    letterbox,
    letterbox_boxes,
    photometric,
    random_affine,
    to_tensor,
    to_tensor_batch,
)


def test_letterbox_math():
    image = np.full((100, 200, 3), 255, np.uint8)  # 2:1 image into a 96x160 input
    out, scale, pad_x, pad_y = letterbox(image, (96, 160))
    assert out.shape == (96, 160, 3)
    assert scale == pytest.approx(0.8) and (pad_x, pad_y) == (0, 8)  # 160x80 content, 8 rows above/below
    assert (out[:8] == 127).all() and (out[88:] == 127).all() and (out[8:88] == 255).all()
    boxes = letterbox_boxes(np.array([[0, 0, 200, 100], [50, 25, 100, 50]]), scale, pad_x, pad_y)
    np.testing.assert_allclose(boxes, [[0, 8, 160, 88], [40, 28, 80, 48]])
    tall = np.zeros((300, 100, 3), np.uint8)
    out, scale, pad_x, pad_y = letterbox(tall, (96, 160), color=(1, 2, 3))
    assert scale == pytest.approx(0.32) and (pad_x, pad_y) == (64, 0)  # 32x96 content centred
    assert out[0, 0].tolist() == [1, 2, 3] and out[0, 64].tolist() == [0, 0, 0]


def test_to_tensor_values_and_order():
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    t = to_tensor(image)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    expected = [(1.0 - MEAN[0]) / STD[0], (0.0 - MEAN[1]) / STD[1], (0.0 - MEAN[2]) / STD[2]]
    torch.testing.assert_close(t[:, 0, 0], torch.tensor(expected))
    batch = to_tensor_batch([image, image])
    assert batch.shape == (2, 3, 2, 3)
    torch.testing.assert_close(batch[1], t)


def _mask_box(image: np.ndarray) -> np.ndarray:
    """Bounding box (pixel edges) of the saturated-red pixels."""
    red = (image[..., 2] > 200) & (image[..., 1] < 80) & (image[..., 0] < 80)
    ys, xs = np.nonzero(red)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


@pytest.mark.parametrize("seed", range(6))
def test_affine_keeps_boxes_on_their_pixels(seed):
    image = np.full((96, 160, 3), 127, np.uint8)
    box = np.array([[50, 30, 90, 70]], float)
    image[30:70, 50:90] = (0, 0, 255)
    rng = np.random.default_rng(seed)
    out, boxes, keep = random_affine(image, box, rng, degrees=10, translate=0.1, scale=(0.6, 1.3), shear=3)
    assert keep.tolist() == [0]
    np.testing.assert_allclose(boxes[0], _mask_box(out), atol=2.0)


@pytest.mark.parametrize("seed", range(4))
def test_augment_with_flip_and_hsv_keeps_alignment(seed):
    image = np.full((96, 160, 3), 127, np.uint8)
    image[20:50, 10:40] = (0, 0, 255)
    config = AugmentConfig(degrees=8, hsv_s=0.2, hsv_v=0.1, flip=0.5)
    out, boxes, keep = augment(image, np.array([[10, 20, 40, 50]]), np.random.default_rng(seed), config)
    assert keep.tolist() == [0]
    np.testing.assert_allclose(boxes[0], _mask_box(out), atol=2.0)


def test_affine_drops_boxes_pushed_outside():
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [40, 40, 60, 60], [95, 0, 100, 5]], float)

    class Highest:  # every draw takes the top of its range: no rotation/shear, zoom 1, shift +10 px
        def uniform(self, lo, hi):
            return hi

    _, out, keep = random_affine(image, boxes, Highest(), degrees=0, translate=0.1, scale=(1.0, 1.0), shear=0)
    assert keep.tolist() == [0, 1]  # the third box left the image (area 0 inside)
    np.testing.assert_allclose(out, [[10, 10, 20, 20], [50, 50, 70, 70]], atol=1e-4)


def test_horizontal_flip_and_hsv():
    image = np.zeros((4, 10, 3), np.uint8)
    image[:, 0] = 255
    flipped, boxes = horizontal_flip(image, np.array([[0, 0, 3, 4]]))
    assert flipped[:, 9].min() == 255 and flipped[:, 0].max() == 0
    np.testing.assert_allclose(boxes, [[7, 0, 10, 4]])
    rng = np.random.default_rng(0)
    colourful = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = hsv_jitter(colourful, rng, hue=0.0, saturation=0.0, value=0.0)  # identity up to HSV rounding
    assert out.shape == colourful.shape and np.abs(out.astype(int) - colourful).max() <= 8


class Scripted:
    """A generator whose ``uniform`` draws come from a script (``size=`` gives an array); ``random``
    returns 0.9, so photometric's noise and blur (probability 0.5 each) are skipped."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def uniform(self, lo, hi, size=None):
        value = self.draws.pop(0)
        return np.asarray(value) if size is not None else value

    def random(self):
        return 0.9


def test_photometric_by_hand():
    # constant 0.2: gain 1.5 -> 0.3; contrast about the mean leaves a flat image alone; gamma 2 -> 0.09;
    # channel gains 1.0 / 1.2 / 0.8 -> 22.95 / 27.54 / 18.36 grey levels
    flat = np.full((4, 6, 3), 51, np.uint8)
    out = photometric(flat, Scripted(np.log(1.5), 0.9, np.log(2.0), [1.0, 1.2, 0.8]))
    assert out.dtype == np.uint8 and out.shape == flat.shape
    assert out.reshape(-1, 3).tolist() == [[23, 28, 18]] * 24
    # two levels 0.2 / 0.6 (mean 0.4), contrast 0.75: 0.25 / 0.55 -> 63.75 / 140.25 grey levels
    two = np.full((4, 6, 3), 51, np.uint8)
    two[:, 3:] = 153
    out = photometric(two, Scripted(0.0, 0.75, 0.0, [1.0, 1.0, 1.0]))
    assert out[:, :3].tolist() == [[[64] * 3] * 3] * 4 and out[:, 3:].tolist() == [[[140] * 3] * 3] * 4


def test_photometric_is_strong_and_keeps_content_in_place():
    image = np.full((32, 48, 3), 60, np.uint8)
    image[8:24, 12:36] = 200  # a bright object on a dark background
    means = []
    for seed in range(60):
        out = photometric(image, np.random.default_rng(seed)).astype(float)
        inside, outside = out[10:22, 14:34].mean(), np.concatenate([out[:6].ravel(), out[26:].ravel()]).mean()
        assert inside > outside  # every change is pointwise monotone: nothing moves or inverts
        means.append(out.mean() / image.mean())
    assert min(means) < 0.5 and max(means) > 1.3  # brightness varies over a wide range


def test_photometric_choice_is_checked():
    assert AugmentConfig(photometric="strong").photometric == "strong"
    with pytest.raises(ValueError, match="photometric must be one of"):
        AugmentConfig(photometric="heavy")


def test_augment_strong_changes_colours_only():
    image = np.full((96, 160, 3), 127, np.uint8)
    image[20:50, 10:40] = (0, 0, 255)
    boxes = np.array([[10, 20, 40, 50]])
    basic, strong = AugmentConfig(flip=0.0), AugmentConfig(flip=0.0, photometric="strong")
    out_b, boxes_b, _ = augment(image, boxes, np.random.default_rng(3), basic)
    out_s, boxes_s, _ = augment(image, boxes, np.random.default_rng(3), strong)
    np.testing.assert_array_equal(boxes_b, boxes_s)  # same geometry draw
    assert np.abs(out_b.astype(int) - out_s).mean() > 2
