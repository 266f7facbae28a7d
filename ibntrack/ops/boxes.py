"""Pure box math on torch tensors: format conversions, areas and the IoU family.

Formats: `xyxy` (x1, y1, x2, y2), `xywh` (MOT top-left + size), `cxcywh` (centre + size). Every function
accepts boxes with any leading shape `[..., 4]` unless stated, returns new tensors and never modifies its
inputs. Numpy users convert with `torch.from_numpy`.

Overlap metrics (Zheng et al., "Distance-IoU Loss", AAAI 2020):

- IoU  = |A ∩ B| / |A ∪ B|
- GIoU = IoU − |C \\ (A ∪ B)| / |C|, C the smallest box enclosing A and B
- DIoU = IoU − ρ² / c², ρ the distance between box centres, c the diagonal of C
- CIoU = DIoU − α·v, v = 4/π²·(atan(w_B/h_B) − atan(w_A/h_A))², α = v / (1 − IoU + v) (α not differentiated)

Inverted boxes (x2 < x1 or y2 < y1) count as empty; denominators are clamped at `eps` so degenerate
boxes give finite values and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "xyxy_to_xywh",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "cxcywh_to_xyxy",
    "box_area",
    "box_iou",
    "box_giou",
    "box_diou",
    "box_ciou",
    "paired_iou",
    "paired_giou",
    "paired_diou",
    "paired_ciou",
    "undo_letterbox",
    "clip_boxes",
]

_EPS = 1e-7


def _check_last_dim(boxes: Tensor, name: str) -> None:
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4], got {tuple(boxes.shape)}")


# ---------------------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------------------


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """`[..., 4]` xyxy → `[..., 4]` xywh (top-left corner + width, height)."""
    _check_last_dim(boxes, "boxes")
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """`[..., 4]` xywh (top-left corner + width, height) → `[..., 4]` xyxy."""
    _check_last_dim(boxes, "boxes")
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """`[..., 4]` xyxy → `[..., 4]` cxcywh (centre + width, height)."""
    _check_last_dim(boxes, "boxes")
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """`[..., 4]` cxcywh (centre + width, height) → `[..., 4]` xyxy."""
    _check_last_dim(boxes, "boxes")
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Areas of `[..., 4]` xyxy boxes → `[...]`; inverted boxes have area 0."""
    _check_last_dim(boxes, "boxes")
    x1, y1, x2, y2 = boxes.unbind(-1)
    return (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)


def undo_letterbox(boxes: Tensor, scale: float, pad_x: float, pad_y: float) -> Tensor:
    """Map `[..., 4]` xyxy boxes from letterboxed network-input pixels to original-image pixels.

    The letterbox maps `x → x·scale + pad_x`, `y → y·scale + pad_y`; this returns `(box − pad) / scale`.
    """
    _check_last_dim(boxes, "boxes")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    pad = boxes.new_tensor([pad_x, pad_y, pad_x, pad_y])
    return (boxes - pad) / scale


def clip_boxes(boxes: Tensor, width: float, height: float) -> Tensor:
    """Clip `[..., 4]` xyxy boxes to the image `[0, width] × [0, height]` (pixels)."""
    _check_last_dim(boxes, "boxes")
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be > 0, got width={width}, height={height}")
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(
        (x1.clamp(0, width), y1.clamp(0, height), x2.clamp(0, width), y2.clamp(0, height)), dim=-1
    )


# ---------------------------------------------------------------------------------------------------------
# IoU family, written once on broadcast shapes [..., 4]
# ---------------------------------------------------------------------------------------------------------


def _overlap(a: Tensor, b: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """IoU and union of broadcastable `[..., 4]` xyxy boxes."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    union = box_area(a) + box_area(b) - inter
    return inter / union.clamp(min=eps), union


def _enclosing_wh(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Width and height of the smallest box enclosing `a` and `b` (broadcast `[..., 4]` → `[...]`)."""
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    return cw, ch


def _giou(a: Tensor, b: Tensor, eps: float) -> Tensor:
    iou, union = _overlap(a, b, eps)
    cw, ch = _enclosing_wh(a, b)
    enclosing = (cw * ch).clamp(min=eps)
    return iou - (enclosing - union) / enclosing


def _diou_terms(a: Tensor, b: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """IoU and the DIoU penalty ρ²/c²."""
    iou, _ = _overlap(a, b, eps)
    cw, ch = _enclosing_wh(a, b)
    diag2 = (cw**2 + ch**2).clamp(min=eps)
    dx = (a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) / 2
    dy = (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) / 2
    return iou, (dx**2 + dy**2) / diag2


def _diou(a: Tensor, b: Tensor, eps: float) -> Tensor:
    iou, penalty = _diou_terms(a, b, eps)
    return iou - penalty


def _ciou(a: Tensor, b: Tensor, eps: float) -> Tensor:
    iou, penalty = _diou_terms(a, b, eps)
    wa = (a[..., 2] - a[..., 0]).clamp(min=0)
    ha = (a[..., 3] - a[..., 1]).clamp(min=0)
    wb = (b[..., 2] - b[..., 0]).clamp(min=0)
    hb = (b[..., 3] - b[..., 1]).clamp(min=0)
    v = (4 / math.pi**2) * (torch.atan(wb / (hb + eps)) - torch.atan(wa / (ha + eps))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v).clamp(min=eps)
    return iou - penalty - alpha * v


def _pairwise(fn, boxes1: Tensor, boxes2: Tensor, eps: float) -> Tensor:
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{name} must have shape [N, 4], got {tuple(boxes.shape)}")
    # [N, 1, 4] against [1, M, 4] -> [N, M]
    return fn(boxes1[:, None, :], boxes2[None, :, :], eps)


def _paired(fn, boxes1: Tensor, boxes2: Tensor, eps: float) -> Tensor:
    _check_last_dim(boxes1, "boxes1")
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"boxes1 and boxes2 must have the same shape, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    return fn(boxes1, boxes2, eps)


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Pairwise IoU of `[N, 4]` and `[M, 4]` xyxy boxes → `[N, M]`."""
    return _pairwise(lambda a, b, e: _overlap(a, b, e)[0], boxes1, boxes2, eps)


def box_giou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Pairwise generalised IoU of `[N, 4]` and `[M, 4]` xyxy boxes → `[N, M]`, in [−1, 1]."""
    return _pairwise(_giou, boxes1, boxes2, eps)


def box_diou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Pairwise distance IoU of `[N, 4]` and `[M, 4]` xyxy boxes → `[N, M]`, in [−1, 1]."""
    return _pairwise(_diou, boxes1, boxes2, eps)


def box_ciou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Pairwise complete IoU of `[N, 4]` and `[M, 4]` xyxy boxes → `[N, M]`."""
    return _pairwise(_ciou, boxes1, boxes2, eps)


def paired_iou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Element-wise IoU of two `[N, 4]` xyxy box tensors → `[N]` (any equal leading shape works)."""
    return _paired(lambda a, b, e: _overlap(a, b, e)[0], boxes1, boxes2, eps)


def paired_giou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Element-wise generalised IoU of two `[N, 4]` xyxy box tensors → `[N]`."""
    return _paired(_giou, boxes1, boxes2, eps)


def paired_diou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Element-wise distance IoU of two `[N, 4]` xyxy box tensors → `[N]`."""
    return _paired(_diou, boxes1, boxes2, eps)


def paired_ciou(boxes1: Tensor, boxes2: Tensor, eps: float = _EPS) -> Tensor:
    """Element-wise complete IoU of two `[N, 4]` xyxy box tensors → `[N]`."""
    return _paired(_ciou, boxes1, boxes2, eps)
