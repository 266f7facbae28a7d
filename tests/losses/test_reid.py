import math

import pytest
import torch

from ibntrack.losses import ReIDLoss


def test_zero_classifier_gives_log_num_ids():
    loss_fn = ReIDLoss(emb_dim=4, num_ids=5)
    torch.nn.init.zeros_(loss_fn.classifier.weight)
    torch.nn.init.zeros_(loss_fn.classifier.bias)
    loss = loss_fn(torch.randn(3, 4), torch.tensor([0, 4, 2]))
    assert loss.item() == pytest.approx(math.log(5))
    assert loss_fn.emb_scale == pytest.approx(math.sqrt(2) * math.log(4))
    assert ReIDLoss(4, 2).emb_scale == 1.0


def test_ignores_unknown_ids():
    torch.manual_seed(0)
    loss_fn = ReIDLoss(emb_dim=4, num_ids=3)
    emb = torch.randn(2, 3, 4)
    ids = torch.tensor([[0, -1, 2], [-1, -1, 1]])
    known = ids >= 0
    assert loss_fn(emb, ids).item() == pytest.approx(loss_fn(emb[known], ids[known]).item())


def test_no_known_ids_returns_zero_with_graph():
    loss_fn = ReIDLoss(emb_dim=4, num_ids=3)
    emb = torch.randn(2, 4, requires_grad=True)
    loss = loss_fn(emb, torch.tensor([-1, -1]))
    assert loss.item() == 0
    loss.backward()
    assert emb.grad is not None and torch.count_nonzero(emb.grad) == 0


def test_bad_ids_raise():
    with pytest.raises(ValueError, match="ids"):
        ReIDLoss(4, 3)(torch.randn(2, 4), torch.tensor([0, 3]))
