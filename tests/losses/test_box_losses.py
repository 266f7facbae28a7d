import pytest
import torch

from ibntrack.losses import ciou_loss, diou_loss, giou_loss, iou_loss


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_diou_loss_detectron2_example():
    # IoU 0.5, centre distance^2 0.25, enclosing diagonal^2 8 -> 1 - 0.5 + 0.25/8
    loss = diou_loss(t([-1, -1, 1, 1]), t([0, -1, 1, 1]))
    assert loss.tolist() == pytest.approx([0.53125])


def test_reductions():
    pred, target = t([-1, -1, 1, 1], [0, 0, 1, 1]), t([0, -1, 1, 1], [0, 0, 1, 1])
    assert diou_loss(pred, target, "sum").item() == pytest.approx(0.53125)
    assert diou_loss(pred, target, "mean").item() == pytest.approx(0.53125 / 2)
    assert iou_loss(torch.zeros(0, 4), torch.zeros(0, 4), "mean").item() == 0
    with pytest.raises(ValueError, match="reduction"):
        diou_loss(pred, target, "avg")


def test_diou_has_gradient_for_disjoint_boxes_iou_does_not():
    target = t([2, 0, 3, 1])
    grads = {}
    for name, fn in (("iou", iou_loss), ("giou", giou_loss), ("diou", diou_loss), ("ciou", ciou_loss)):
        pred = t([0, 0, 1, 1]).requires_grad_(True)
        fn(pred, target, "sum").backward()
        grads[name] = pred.grad
    assert torch.count_nonzero(grads["iou"]) == 0
    assert torch.count_nonzero(grads["diou"]) > 0 and torch.count_nonzero(grads["ciou"]) > 0
    # translating the prediction right (toward the target) lowers the DIoU loss
    assert grads["diou"][0, 0] + grads["diou"][0, 2] < 0


def test_equal_iou_different_placement():
    # both predictions are a 4x4 box inside the 6x6 target: IoU 16/36 for both
    target = t([0, 0, 6, 6], [0, 0, 6, 6])
    pred = t([1, 1, 5, 5], [0, 0, 4, 4])
    iou = iou_loss(pred, target)
    assert iou[0].item() == pytest.approx(iou[1].item())
    diou = diou_loss(pred, target)
    assert diou[0].item() == pytest.approx(5 / 9)  # centred: no distance penalty
    assert diou[1].item() == pytest.approx(5 / 9 + 2 / 72)  # rho^2 = 2, c^2 = 72


def test_giou_and_ciou_values():
    a, b = t([0, 0, 2, 2]), t([1, 1, 3, 3])
    assert giou_loss(a, b).item() == pytest.approx(1 - (1 / 7 - 2 / 9))
    assert ciou_loss(a, b).item() == pytest.approx(1 - (1 / 7 - 2 / 18))
    assert diou_loss(a, a).item() == pytest.approx(0, abs=1e-6)
