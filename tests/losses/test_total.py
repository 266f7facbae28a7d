import math

import pytest
import torch

from ibntrack.losses import LossConfig, MotLoss
from ibntrack.ops import build_targets

EMB, NUM_IDS, C, SIZE = 8, 5, 2, (32, 32)


def _batch():
    items = [
        build_targets(
            torch.tensor([[4.0, 4.0, 20.0, 28.0]]), torch.tensor([0]), torch.tensor([3]), SIZE, C, max_objs=4
        ),
        build_targets(
            torch.tensor([[2.0, 6.0, 14.0, 18.0], [16.0, 8.0, 30.0, 30.0]]),
            torch.tensor([1, 0]),
            torch.tensor([-1, 4]),
            SIZE,
            C,
            max_objs=4,
        ),
    ]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _outputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = SIZE[0] // 4, SIZE[1] // 4
    return {
        "hm": torch.randn(2, C, h, w, generator=g).requires_grad_(True),
        "wh": (torch.rand(2, 4, h, w, generator=g) * 3).requires_grad_(True),
        "reg": torch.rand(2, 2, h, w, generator=g).requires_grad_(True),
        "id": torch.randn(2, EMB, h, w, generator=g).requires_grad_(True),
    }


@pytest.mark.parametrize("box_loss", ["l1", "iou", "giou", "diou", "ciou"])
def test_each_box_loss_runs_and_backprops(box_loss):
    mot = MotLoss(LossConfig(box_loss=box_loss), EMB, NUM_IDS)
    outputs = _outputs()
    loss, parts = mot(outputs, _batch())
    assert set(parts) == {"hm", "box", "off", "id", "det", "total"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in parts.values())
    loss.backward()
    for p in (mot.s_det, mot.s_id, mot.classifier.weight, outputs["wh"], outputs["reg"], outputs["id"]):
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0


def test_uncertainty_formula_and_plain_sum():
    targets, outputs = _batch(), _outputs()
    _, parts = MotLoss(LossConfig(), EMB, NUM_IDS)(outputs, targets)
    expected = 0.5 * (math.exp(1.85) * parts["det"] + math.exp(1.05) * parts["id"] - 1.85 - 1.05)
    assert parts["total"] == pytest.approx(expected, rel=1e-5)
    cfg = LossConfig(uncertainty=False, id_weight=0.5, hm_weight=2.0, off_weight=0.0)
    _, plain = MotLoss(cfg, EMB, NUM_IDS)(outputs, targets)
    assert plain["det"] == pytest.approx(2 * plain["hm"] + 1.0 * plain["box"], rel=1e-5)
    assert plain["total"] == pytest.approx(plain["det"] + 0.5 * plain["id"], rel=1e-5)


@pytest.mark.parametrize("box_loss", ["l1", "diou", "ciou"])
def test_perfect_box_and_offset_predictions_cost_zero(box_loss):
    targets = _batch()
    outputs = {k: v.detach().clone() for k, v in _outputs().items()}
    for n in range(2):
        for k in range(int(targets["mask"][n].sum())):
            y, x = divmod(int(targets["ind"][n, k]), SIZE[1] // 4)
            outputs["wh"][n, :, y, x] = targets["ltrb"][n, k]
            outputs["reg"][n, :, y, x] = targets["reg"][n, k]
    _, parts = MotLoss(LossConfig(box_loss=box_loss), EMB, NUM_IDS)(outputs, targets)
    assert parts["box"] == pytest.approx(0, abs=1e-5) and parts["off"] == pytest.approx(0, abs=1e-6)


def test_box_weight_defaults_and_validation():
    assert LossConfig(box_loss="l1").effective_box_weight == 0.1
    assert LossConfig().effective_box_weight == 1.0
    assert LossConfig(box_weight=3.0).effective_box_weight == 3.0
    with pytest.raises(ValueError, match="l1"):
        LossConfig(box_loss="smooth_l1")


def test_reid_disabled_and_params():
    mot = MotLoss(LossConfig(), emb_dim=EMB, num_ids=0)
    assert mot.classifier is None
    outputs = {k: v for k, v in _outputs().items() if k != "id"}
    loss, parts = mot(outputs, _batch())
    assert parts["id"] == 0
    loss.backward()
    assert mot.s_id.grad is None and mot.s_det.grad is not None
    names = {n for n, _ in MotLoss(LossConfig(), EMB, NUM_IDS).named_parameters()}
    assert names == {"s_det", "s_id", "reid.classifier.weight", "reid.classifier.bias"}
