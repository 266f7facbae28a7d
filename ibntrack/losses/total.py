"""The multi-task training loss: detection (heatmap, box, offset) + ReID, balanced by learned uncertainty.

`MotLoss` owns trainable parameters (`s_det`, `s_id` and the ReID classifier); hand `loss.parameters()`
to the optimizer next to `model.parameters()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ibntrack.losses.box import ciou_loss, diou_loss, giou_loss, iou_loss
from ibntrack.losses.focal import focal_loss
from ibntrack.losses.reid import ReIDLoss
from ibntrack.ops.decode import gather_at

__all__ = ["LossConfig", "MotLoss", "BOX_LOSSES", "DEFAULT_BOX_WEIGHTS"]

_IOU_LOSSES = {"iou": iou_loss, "giou": giou_loss, "diou": diou_loss, "ciou": ciou_loss}
BOX_LOSSES: tuple[str, ...] = ("l1", *_IOU_LOSSES)

# Default `box_weight` per box loss. L1 on (l, t, r, b) in cells grows with object size (tens of cells),
# so FairMOT weights it 0.1; the IoU family is bounded in [0, 2] and sits on the focal loss's scale.
DEFAULT_BOX_WEIGHTS: dict[str, float] = {"l1": 0.1, "iou": 1.0, "giou": 1.0, "diou": 1.0, "ciou": 1.0}

_MASK_EPS = 1e-4  # keeps masked means finite (and 0) when an image has no objects


@dataclass(frozen=True)
class LossConfig:
    """Loss settings.

    Attributes:
        box_loss: one of `l1 | iou | giou | diou | ciou`. `l1` regresses the (l, t, r, b) distances in
            cells; the IoU family compares boxes decoded at the ground-truth centres with the target boxes.
        hm_weight: weight of the heatmap focal loss in `L_det`.
        box_weight: weight of the box loss in `L_det`; `None` picks `DEFAULT_BOX_WEIGHTS[box_loss]`
            (0.1 for `l1` as in FairMOT, 1.0 for the IoU family).
        off_weight: weight of the centre-offset L1 loss in `L_det`.
        id_weight: weight of the ReID loss when `uncertainty` is off.
        uncertainty: balance detection and ReID with learned task uncertainty (FairMOT):
            `0.5·(e^{−s_det}·L_det + e^{−s_id}·L_id + s_det + s_id)`; otherwise `L_det + id_weight·L_id`.
        s_det_init: initial `s_det`.
        s_id_init: initial `s_id`.
    """

    box_loss: str = "diou"
    hm_weight: float = 1.0
    box_weight: float | None = None
    off_weight: float = 1.0
    id_weight: float = 1.0
    uncertainty: bool = True
    s_det_init: float = -1.85
    s_id_init: float = -1.05

    def __post_init__(self) -> None:
        if self.box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {BOX_LOSSES}, got {self.box_loss!r}")
        for name in ("hm_weight", "off_weight", "id_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.box_weight is not None and self.box_weight < 0:
            raise ValueError(f"box_weight must be >= 0 or None, got {self.box_weight}")

    @property
    def effective_box_weight(self) -> float:
        """`box_weight`, or the default for `box_loss` when it is `None`."""
        return DEFAULT_BOX_WEIGHTS[self.box_loss] if self.box_weight is None else float(self.box_weight)


class MotLoss(nn.Module):
    """FairMOT-style joint detection + ReID loss.

    Args:
        config: loss settings.
        emb_dim: embedding size `E` of the model's `id` head.
        num_ids: number of training identities; 0 (or `emb_dim == 0`) disables the ReID term.

    Call with the model's output dict (`hm [N,C,h,w]` logits, `wh [N,4,h,w]`, `reg [N,2,h,w]`,
    `id [N,E,h,w]`) and the batched targets of `ibntrack.ops.build_targets` (`hm [N,C,h,w]`, `ind [N,K]`,
    `mask [N,K]`, `reg [N,K,2]`, `ltrb [N,K,4]`, `boxes [N,K,4]`, `ids [N,K]`). Returns `(loss, parts)`:
    the scalar total and a dict of floats `hm, box, off, id, det, total`.
    """

    def __init__(self, config: LossConfig | None = None, emb_dim: int = 128, num_ids: int = 0) -> None:
        super().__init__()
        self.config = config if config is not None else LossConfig()
        if emb_dim < 0 or num_ids < 0:
            raise ValueError(f"emb_dim and num_ids must be >= 0, got emb_dim={emb_dim}, num_ids={num_ids}")
        self.reid = ReIDLoss(emb_dim, num_ids) if emb_dim > 0 and num_ids > 0 else None
        self.s_det = nn.Parameter(torch.tensor(float(self.config.s_det_init)))
        self.s_id = nn.Parameter(torch.tensor(float(self.config.s_id_init)))

    @property
    def classifier(self) -> nn.Linear | None:
        """The ReID identity classifier (`None` when ReID is disabled)."""
        return None if self.reid is None else self.reid.classifier

    def forward(
        self, outputs: dict[str, Tensor], targets: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        use_id = self.reid is not None
        box_key = "ltrb" if cfg.box_loss == "l1" else "boxes"
        _require(outputs, "outputs", ("hm", "wh", "reg") + (("id",) if use_id else ()))
        _require(targets, "targets", ("hm", "ind", "mask", "reg", box_key) + (("ids",) if use_id else ()))

        ind = targets["ind"].long()  # [N, K]
        mask = targets["mask"].float()  # [N, K]

        loss_hm = focal_loss(outputs["hm"], targets["hm"])

        reg_pred = gather_at(outputs["reg"], ind).float()  # [N, K, 2]
        loss_off = _masked_l1(reg_pred, targets["reg"].float(), mask)

        ltrb_pred = gather_at(outputs["wh"], ind).float()  # [N, K, 4]
        if cfg.box_loss == "l1":
            loss_box = _masked_l1(ltrb_pred, targets["ltrb"].float(), mask)
        else:
            w = outputs["wh"].shape[-1]
            cell_xy = torch.stack((ind % w, ind // w), dim=-1).float()  # [N, K, 2] integer cell (x, y)
            centre = cell_xy + reg_pred
            pred_boxes = torch.cat((centre - ltrb_pred[..., :2], centre + ltrb_pred[..., 2:]), dim=-1)
            sel = mask > 0
            per_obj = _IOU_LOSSES[cfg.box_loss](pred_boxes[sel], targets["boxes"].float()[sel])  # [P]
            loss_box = (per_obj * mask[sel]).sum() / (mask[sel].sum() + _MASK_EPS)

        loss_det = cfg.hm_weight * loss_hm + cfg.effective_box_weight * loss_box + cfg.off_weight * loss_off

        if self.reid is not None:
            emb = gather_at(outputs["id"], ind)  # [N, K, E]
            ids = torch.where(mask > 0, targets["ids"].long(), torch.full_like(ind, -1))
            loss_id = self.reid(emb, ids)
        else:
            loss_id = loss_det.new_zeros(())

        if cfg.uncertainty:
            total = torch.exp(-self.s_det) * loss_det + self.s_det
            if use_id:
                total = total + torch.exp(-self.s_id) * loss_id + self.s_id
            total = 0.5 * total
        else:
            total = loss_det + cfg.id_weight * loss_id

        parts = {
            "hm": float(loss_hm.detach()),
            "box": float(loss_box.detach()),
            "off": float(loss_off.detach()),
            "id": float(loss_id.detach()),
            "det": float(loss_det.detach()),
            "total": float(total.detach()),
        }
        return total, parts


def _masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error over masked entries: `pred, target [N, K, D]`, `mask [N, K]` → scalar."""
    weight = mask.unsqueeze(-1)  # [N, K, 1]
    return ((pred - target).abs() * weight).sum() / (weight.sum() * pred.shape[-1] + _MASK_EPS)


def _require(d: dict[str, Tensor], name: str, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{name} is missing keys {missing}; got {sorted(d)}")
