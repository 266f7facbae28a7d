import numpy as np
import pytest

from ibntrack.structures import Detections


def _dets(n: int = 3, e: int = 2) -> Detections:
    boxes = np.arange(n * 4, dtype=np.float64).reshape(n, 4)
    return Detections(
        boxes=boxes, scores=np.linspace(0.9, 0.5, n), classes=np.arange(n), embeddings=np.ones((n, e))
    )


def test_dtypes_and_len():
    d = _dets()
    assert len(d) == 3 and d.emb_dim == 2
    assert d.boxes.dtype == np.float32 and d.scores.dtype == np.float32
    assert d.classes.dtype == np.int64 and d.embeddings.dtype == np.float32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("boxes", np.zeros((3, 5))),
        ("scores", np.zeros(2)),
        ("classes", np.zeros((3, 1))),
        ("embeddings", np.zeros(3)),
    ],
)
def test_bad_shape_names_field(field, value):
    kwargs = dict(
        boxes=np.zeros((3, 4)), scores=np.zeros(3), classes=np.zeros(3), embeddings=np.zeros((3, 0))
    )
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        Detections(**kwargs)


def test_select_mask_and_indices():
    d = _dets()
    by_mask = d.select(np.array([True, False, True]))
    by_idx = d.select([2, 0])
    assert len(by_mask) == 2 and by_mask.classes.tolist() == [0, 2]
    assert by_idx.classes.tolist() == [2, 0]
    assert len(d.select([])) == 0
    with pytest.raises(ValueError, match="mask_or_indices"):
        d.select(np.array([True, False]))


def test_empty():
    d = Detections.empty(emb_dim=8)
    assert len(d) == 0 and d.boxes.shape == (0, 4) and d.embeddings.shape == (0, 8)


def test_rescale_undoes_letterbox():
    # original box (10, 20, 30, 40), letterbox scale 0.5, pad (3, 7) -> (8, 17, 18, 27)
    d = Detections(np.array([[8, 17, 18, 27]]), np.array([0.9]), np.array([0]), np.zeros((1, 0)))
    np.testing.assert_allclose(d.rescale(0.5, 3, 7).boxes, [[10, 20, 30, 40]])
    assert d.boxes[0, 0] == 8  # original unchanged
