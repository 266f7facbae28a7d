"""Penalty-reduced focal loss on the centre heatmap (CenterNet, Zhou et al. 2019)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["focal_loss"]

_ALPHA = 2  # focusing exponent on the prediction
_BETA = 4  # penalty reduction near the gaussian peaks
_PROB_CLAMP = 1e-4  # sigmoid output is kept in [1e-4, 1 - 1e-4]


def focal_loss(hm_logits: Tensor, hm_target: Tensor) -> Tensor:
    """CenterNet's focal loss with alpha = 2, beta = 4.

    With `p = clamp(sigmoid(logit), 1e-4, 1 − 1e-4)` and target `y`:
    positives (`y == 1`) cost `−(1 − p)^2·log p`, other cells cost `−(1 − y)^4·p^2·log(1 − p)`; the sum over
    all cells is divided by the number of positives (by 1 when there are none).

    Args:
        hm_logits: heatmap logits `[N, C, h, w]` (any shape works).
        hm_target: gaussian targets in [0, 1], exactly 1 at object centres, same shape.

    Returns:
        Scalar loss.
    """
    if hm_logits.shape != hm_target.shape:
        raise ValueError(
            f"hm_logits and hm_target must have the same shape, got {tuple(hm_logits.shape)} "
            f"and {tuple(hm_target.shape)}"
        )
    p = hm_logits.float().sigmoid().clamp(_PROB_CLAMP, 1 - _PROB_CLAMP)
    target = hm_target.float()
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = p.log() * (1 - p) ** _ALPHA * pos
    neg_loss = (1 - p).log() * p**_ALPHA * (1 - target) ** _BETA * neg
    num_pos = pos.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos
