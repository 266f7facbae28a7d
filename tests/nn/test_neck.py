"""Upsampling neck: shapes and validation."""

import pytest
import torch

from ibntrack.nn.neck import FPNNeck


def test_fuses_to_stride_4() -> None:
    neck = FPNNeck([8, 16, 32, 64], 12)
    feats = [torch.randn(2, c, 16 // 2**i, 24 // 2**i) for i, c in enumerate([8, 16, 32, 64])]
    assert neck(feats).shape == (2, 12, 16, 24)


def test_validation() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        FPNNeck([8], 4)
    with pytest.raises(ValueError, match="out_channels"):
        FPNNeck([8, 16], 0)
    with pytest.raises(ValueError, match="features"):
        FPNNeck([8, 16], 4)([torch.randn(1, 8, 4, 4)])
