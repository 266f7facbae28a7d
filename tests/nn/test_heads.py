"""Heads: spec, init biases, non-negative wh with clamp."""

import math

import pytest
import torch

from ibntrack.nn.heads import HM_BIAS_INIT, WH_LOG_MAX, Heads, fairmot_spec


def test_spec_shapes_and_init() -> None:
    heads = Heads(8, fairmot_spec(num_classes=3, emb_dim=16), head_conv=4)
    out = heads(torch.randn(2, 8, 5, 7))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "hm": (2, 3, 5, 7),
        "wh": (2, 4, 5, 7),
        "reg": (2, 2, 5, 7),
        "id": (2, 16, 5, 7),
    }
    assert torch.all(heads.heads["hm"][-1].bias == HM_BIAS_INIT)
    torch.testing.assert_close(out["wh"], torch.full_like(out["wh"], 4.0), atol=0.1, rtol=0.05)


def test_wh_is_exp_of_clamped_raw() -> None:
    heads = Heads(2, {"wh": 4}, head_conv=2)
    with torch.no_grad():
        final = heads.heads["wh"][-1]
        final.weight.zero_()
        final.bias.copy_(torch.tensor([-1.0, 0.0, 3.0, 50.0]))
    wh = heads(torch.randn(1, 2, 3, 3))["wh"][0, :, 0, 0]
    torch.testing.assert_close(wh, torch.tensor([math.exp(-1), 1.0, math.exp(3), math.exp(WH_LOG_MAX)]))


def test_bad_spec() -> None:
    with pytest.raises(ValueError, match="spec"):
        Heads(4, {})
    with pytest.raises(ValueError, match="spec"):
        Heads(4, {"hm": 0})
    with pytest.raises(ValueError, match="head_conv"):
        Heads(4, {"hm": 1}, head_conv=0)
