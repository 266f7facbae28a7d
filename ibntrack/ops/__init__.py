"""Tensor operations shared by the model, the losses and the data pipeline: box math, targets, decoding."""

from ibntrack.ops.boxes import (
    box_area,
    box_ciou,
    box_diou,
    box_giou,
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    paired_ciou,
    paired_diou,
    paired_giou,
    paired_iou,
    undo_letterbox,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from ibntrack.ops.decode import decode, gather_at
from ibntrack.ops.targets import build_targets, draw_gaussian, gaussian_radius

__all__ = [
    "box_area",
    "box_ciou",
    "box_diou",
    "box_giou",
    "box_iou",
    "build_targets",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "decode",
    "draw_gaussian",
    "gather_at",
    "gaussian_radius",
    "paired_ciou",
    "paired_diou",
    "paired_giou",
    "paired_iou",
    "undo_letterbox",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]
