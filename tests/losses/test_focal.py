import math

import pytest
import torch

from ibntrack.losses import focal_loss


def test_focal_loss_hand_example():
    # logits 0 -> p = 0.5. Positive cell: ln2 * 0.5^2. Cell with y = 0.5: ln2 * 0.5^2 * 0.5^4. One positive.
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.5]]]])
    assert focal_loss(logits, target).item() == pytest.approx(math.log(2) * (0.25 + 0.25 / 16))


def test_focal_loss_zero_positives_is_unnormalised_sum():
    loss = focal_loss(torch.zeros(1, 1, 1, 2), torch.full((1, 1, 1, 2), 0.5))
    assert loss.item() == pytest.approx(2 * math.log(2) * 0.25 / 16)


def test_focal_loss_clamps_and_backprops():
    logits = torch.tensor([[[[100.0, -100.0]]]], requires_grad=True)
    loss = focal_loss(logits, torch.tensor([[[[1.0, 0.0]]]]))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() < 1e-6
    with pytest.raises(ValueError, match="same shape"):
        focal_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 1))
