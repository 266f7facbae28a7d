import math

import pytest
import torch

from ibntrack.ops import boxes as B


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_conversions_hand_values_and_round_trip():
    xyxy = t([1, 2, 5, 8])
    assert B.xyxy_to_xywh(xyxy).tolist() == [[1, 2, 4, 6]]
    assert B.xyxy_to_cxcywh(xyxy).tolist() == [[3, 5, 4, 6]]
    rand = torch.rand(10, 4) * 50
    rand = torch.cat((rand[:, :2], rand[:, :2] + rand[:, 2:]), dim=1)
    torch.testing.assert_close(B.xywh_to_xyxy(B.xyxy_to_xywh(rand)), rand)
    torch.testing.assert_close(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(rand)), rand)


def test_inputs_not_modified():
    a, b = t([0, 0, 2, 2]), t([1, 1, 3, 3])
    a0, b0 = a.clone(), b.clone()
    for fn in (B.box_iou, B.box_giou, B.box_diou, B.box_ciou, B.paired_ciou):
        fn(a, b)
    B.clip_boxes(a, 1, 1)
    B.undo_letterbox(a, 2.0, 1, 1)
    assert torch.equal(a, a0) and torch.equal(b, b0)


def test_area_and_iou_family_hand_values():
    a, b = t([0, 0, 2, 2]), t([1, 1, 3, 3])
    assert B.box_area(t([0, 0, 2, 3], [2, 2, 1, 1])).tolist() == [6, 0]
    # inter 1, union 7, enclosing 3x3 = 9, centre distance^2 = 2, diagonal^2 = 18
    assert B.box_iou(a, b).item() == pytest.approx(1 / 7)
    assert B.box_giou(a, b).item() == pytest.approx(1 / 7 - 2 / 9)
    assert B.box_diou(a, b).item() == pytest.approx(1 / 7 - 2 / 18)
    assert B.box_ciou(a, b).item() == pytest.approx(1 / 7 - 2 / 18)  # same aspect ratio: v = 0


def test_ciou_aspect_term():
    # IoU 4/8 = 0.5, centres (1,1),(2,1): rho^2 = 1, enclosing 4x2: c^2 = 20
    v = 4 / math.pi**2 * (math.atan(2) - math.atan(1)) ** 2
    alpha = v / (1 - 0.5 + v)
    assert B.paired_ciou(t([0, 0, 2, 2]), t([0, 0, 4, 2])).item() == pytest.approx(
        0.5 - 1 / 20 - alpha * v, abs=1e-6
    )


def test_pairwise_shapes_and_consistency_with_paired():
    a = t([0, 0, 2, 2], [1, 1, 4, 5], [3, 0, 4, 1])
    b = t([0, 0, 1, 1], [1, 1, 3, 3])
    for pair, elem in ((B.box_iou, B.paired_iou), (B.box_giou, B.paired_giou), (B.box_diou, B.paired_diou)):
        m = pair(a, b)
        assert m.shape == (3, 2)
        torch.testing.assert_close(m[:, 1], elem(a, b[1:].expand(3, 4)))


def test_degenerate_boxes_are_finite():
    z = t([1, 1, 1, 1], [2, 2, 2, 2])
    for fn in (B.paired_iou, B.paired_giou, B.paired_diou, B.paired_ciou):
        x = z.clone().requires_grad_(True)
        out = fn(x, z)
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="boxes1"):
        B.box_iou(torch.zeros(3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="same shape"):
        B.paired_iou(torch.zeros(3, 4), torch.zeros(2, 4))


def test_undo_letterbox_and_clip():
    assert B.undo_letterbox(t([8, 17, 18, 27]), 0.5, 3, 7).tolist() == [[10, 20, 30, 40]]
    assert B.clip_boxes(t([-5, 2, 120, 90]), 100, 80).tolist() == [[0, 2, 100, 80]]
