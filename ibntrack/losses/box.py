"""Box regression losses of the IoU family: `1 − metric` on xyxy boxes.

DIoU loss (the patent's claim 7) is `1 − IoU + ρ²/c²`: unlike IoU loss it keeps a gradient when the boxes
do not overlap and it separates equal-overlap boxes placed differently. See `ibntrack.ops.boxes`.
"""

from __future__ import annotations

from torch import Tensor

from ibntrack.ops.boxes import paired_ciou, paired_diou, paired_giou, paired_iou

__all__ = ["iou_loss", "giou_loss", "diou_loss", "ciou_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        # mean of an empty tensor is NaN; an empty batch costs 0 (sum keeps the graph)
        return loss.sum() / max(loss.numel(), 1)
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def iou_loss(pred: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """`1 − IoU` of paired boxes.

    Args:
        pred: `[N, 4]` xyxy predicted boxes (any frame, same as `target`).
        target: `[N, 4]` xyxy target boxes.
        reduction: `"none"` (→ `[N]`), `"mean"` or `"sum"` (→ scalar).
    """
    _check_reduction(reduction)
    return _reduce(1 - paired_iou(pred, target), reduction)


def giou_loss(pred: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """`1 − GIoU` of paired `[N, 4]` xyxy boxes, in [0, 2]; arguments as `iou_loss`."""
    _check_reduction(reduction)
    return _reduce(1 - paired_giou(pred, target), reduction)


def diou_loss(pred: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """`1 − IoU + ρ²/c²` of paired `[N, 4]` xyxy boxes, in [0, 2]; arguments as `iou_loss`."""
    _check_reduction(reduction)
    return _reduce(1 - paired_diou(pred, target), reduction)


def ciou_loss(pred: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """`1 − CIoU` (DIoU loss plus the aspect-ratio term `α·v`) of paired `[N, 4]` xyxy boxes."""
    _check_reduction(reduction)
    return _reduce(1 - paired_ciou(pred, target), reduction)
