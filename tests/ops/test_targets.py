import logging
import math

import pytest
import torch

from ibntrack.ops.targets import build_targets, draw_gaussian, gaussian_radius


def test_gaussian_radius_hand_value():
    # 10x10 box, overlap 0.7: the third quadratic (a = 2.8, b = -28, c = -30) wins:
    # root (-28 + sqrt(28^2 + 4*2.8*30)) / 2 = 2.733 (the other two: 19.07, 36.73)
    assert gaussian_radius(10, 10) == pytest.approx((math.sqrt(1120) - 28) / 2)
    assert gaussian_radius(0, 0) == 0


def test_draw_gaussian_values_max_combine_and_borders():
    hm = torch.zeros(5, 5)
    hm[2, 3] = 0.5
    draw_gaussian(hm, (2, 2), 1)  # sigma = 3/6 = 0.5 -> neighbours exp(-2), diagonals exp(-4)
    assert hm[2, 2] == 1
    assert hm[1, 2].item() == pytest.approx(math.exp(-2))
    assert hm[1, 1].item() == pytest.approx(math.exp(-4))
    assert hm[2, 3] == 0.5  # max-combined, not overwritten
    assert hm[0].sum() == 0
    corner = draw_gaussian(torch.zeros(3, 3), (0, 0), 2)
    assert corner[0, 0] == 1 and corner[2, 2] > 0
    assert draw_gaussian(torch.zeros(3, 3), (-9, 0), 2).sum() == 0


def test_build_targets_hand_example():
    boxes = torch.tensor([[5.0, 9.0, 19.0, 17.0], [30.0, 30.0, 30.0, 31.0], [28.0, -4.0, 40.0, 4.0]])
    out = build_targets(boxes, torch.tensor([1, 0, 0]), torch.tensor([7, 8, -1]), (32, 32), 2, max_objs=4)
    # box 0: centre (12, 13) px -> (3, 3.25) cells, cell (3, 3), ind 3*8+3
    assert out["ind"].tolist() == [27, 7, 0, 0]  # box 1 dropped (zero width); box 2 clipped to (28,0,32,4)
    assert out["mask"].tolist() == [1, 1, 0, 0]
    torch.testing.assert_close(out["reg"][0], torch.tensor([0.0, 0.25]))
    torch.testing.assert_close(out["ltrb"][0], torch.tensor([1.75, 1.0, 1.75, 1.0]))
    torch.testing.assert_close(out["boxes"][0], torch.tensor([1.25, 2.25, 4.75, 4.25]))
    # clipped box 2: centre (30, 2) px -> (7.5, 0.5), cell (7, 0)
    torch.testing.assert_close(out["reg"][1], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out["boxes"][1], torch.tensor([7.0, 0.0, 8.0, 1.0]))
    assert out["ids"].tolist() == [7, -1, -1, -1] and out["cls"].tolist() == [1, 0, 0, 0]
    assert out["hm"].shape == (2, 8, 8)
    assert out["hm"][1, 3, 3] == 1 and out["hm"][0, 0, 7] == 1
    assert (out["hm"] == 1).sum() == 2


def test_build_targets_truncates_with_warning(caplog):
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 16.0, 16.0], [16.0, 16.0, 24.0, 24.0]])
    with caplog.at_level(logging.WARNING):
        out = build_targets(boxes, torch.zeros(3, dtype=torch.long), torch.arange(3), (32, 32), 1, max_objs=2)
    assert "max_objs" in caplog.text
    assert out["mask"].tolist() == [1, 1] and out["ids"].tolist() == [0, 1]
    assert (out["hm"] == 1).sum() == 2


def test_build_targets_empty_and_validation():
    out = build_targets(
        torch.zeros(0, 4),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
        (16, 16),
        1,
        max_objs=3,
    )
    assert out["mask"].sum() == 0 and out["hm"].sum() == 0 and out["ids"].tolist() == [-1] * 3
    one = (torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="input_size"):
        build_targets(*one, (30, 32), 1)
    with pytest.raises(ValueError, match="ids"):
        build_targets(one[0], one[1], torch.tensor([0, 1]), (32, 32), 1)
    with pytest.raises(ValueError, match="classes"):
        build_targets(one[0], torch.tensor([3]), one[2], (32, 32), 2)
