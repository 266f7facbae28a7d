"""Training losses: heatmap focal loss, IoU-family box losses (DIoU by default), ReID, task weighting."""

from ibntrack.losses.box import ciou_loss, diou_loss, giou_loss, iou_loss
from ibntrack.losses.focal import focal_loss
from ibntrack.losses.reid import ReIDLoss
from ibntrack.losses.total import BOX_LOSSES, DEFAULT_BOX_WEIGHTS, LossConfig, MotLoss

__all__ = [
    "BOX_LOSSES",
    "DEFAULT_BOX_WEIGHTS",
    "LossConfig",
    "MotLoss",
    "ReIDLoss",
    "ciou_loss",
    "diou_loss",
    "focal_loss",
    "giou_loss",
    "iou_loss",
]
