"""Training targets for the FairMOT heads: boxes + identities → heatmap, offsets, sizes, masks.

Coordinate frames: input boxes are xyxy in network-input pixels (the letterboxed, augmented image);
every returned geometric target is in output cells (input pixels / `stride`).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

__all__ = ["gaussian_radius", "draw_gaussian", "build_targets"]

_LOG = logging.getLogger(__name__)


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """Largest corner displacement that keeps a box's IoU with itself above `min_overlap` (CenterNet).

    The smallest root of the three quadratics in CenterNet's `gaussian_radius` (one corner moving in,
    both moving in, both moving out). The roots are taken as `(b + sqrt(b² − 4ac)) / 2` exactly as
    CenterNet/FairMOT do (not `/(2a)`), so heatmaps match the published models' training targets.

    Args:
        height: box height (any unit; the radius is in the same unit).
        width: box width.
        min_overlap: the IoU to preserve, in (0, 1).

    Returns:
        The radius (float, >= 0 for non-negative sizes).
    """
    if not 0 < min_overlap < 1:
        raise ValueError(f"min_overlap must be in (0, 1), got {min_overlap}")
    h, w, m = float(height), float(width), float(min_overlap)

    b1 = h + w
    c1 = w * h * (1 - m) / (1 + m)
    r1 = (b1 + math.sqrt(max(b1 * b1 - 4 * c1, 0.0))) / 2

    a2, b2, c2 = 4.0, 2 * (h + w), (1 - m) * w * h
    r2 = (b2 + math.sqrt(max(b2 * b2 - 4 * a2 * c2, 0.0))) / 2

    a3, b3, c3 = 4 * m, -2 * m * (h + w), (m - 1) * w * h
    r3 = (b3 + math.sqrt(max(b3 * b3 - 4 * a3 * c3, 0.0))) / 2

    return min(r1, r2, r3)


def draw_gaussian(heatmap: Tensor, center: tuple[int, int], radius: int) -> Tensor:
    """Max-combine a 2-D gaussian peak into `heatmap`, in place.

    The gaussian has value 1 at `center`, `sigma = (2·radius + 1) / 6` and is truncated to the
    `(2·radius + 1)²` window, clipped at the map borders.

    Args:
        heatmap: float `[h, w]` target map the caller owns (modified in place).
        center: integer cell `(cx, cy)`; may lie outside the map (then only the overlap is drawn).
        radius: window half-size in cells, >= 0.

    Returns:
        `heatmap` itself.
    """
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must have shape [h, w], got {tuple(heatmap.shape)}")
    radius = int(radius)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    cx, cy = int(center[0]), int(center[1])
    height, width = heatmap.shape

    sigma = (2 * radius + 1) / 6
    offsets = torch.arange(-radius, radius + 1, dtype=heatmap.dtype, device=heatmap.device)
    # [2r+1, 2r+1] gaussian, rows = y offset, columns = x offset
    gaussian = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma * sigma))
    gaussian = torch.where(gaussian < torch.finfo(heatmap.dtype).eps, 0, gaussian)

    left, right = min(cx, radius), min(width - cx, radius + 1)
    top, bottom = min(cy, radius), min(height - cy, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return heatmap
    rows, cols = slice(cy - top, cy + bottom), slice(cx - left, cx + right)
    patch = gaussian[radius - top : radius + bottom, radius - left : radius + right]
    heatmap[rows, cols] = torch.maximum(heatmap[rows, cols], patch)
    return heatmap


def build_targets(
    boxes: Tensor,
    classes: Tensor,
    ids: Tensor,
    input_size: tuple[int, int],
    num_classes: int,
    stride: int = 4,
    max_objs: int = 256,
) -> dict[str, Tensor]:
    """Targets of one image for the `hm`, `wh`, `reg` and `id` heads.

    Boxes are clipped to the image; boxes with non-positive width or height after clipping are dropped.
    For object `k` with float centre `c = box centre / stride` and integer cell `ct = floor(c)` (clamped
    into the map): `ind = ct_y·w + ct_x`, `reg = c − ct`, `ltrb = (c_x − x1/s, c_y − y1/s, x2/s − c_x,
    y2/s − c_y)`, `boxes = box / s`. When more than `max_objs` boxes remain, the first `max_objs` are
    kept and a warning is logged.

    Args:
        boxes: `[M, 4]` xyxy in network-input pixels.
        classes: `[M]` long, 0-based class index < `num_classes`.
        ids: `[M]` long identity; −1 = unknown (no ReID loss).
        input_size: network input `(H, W)` in pixels, each divisible by `stride`.
        num_classes: number of heatmap channels `C`.
        stride: output stride `s`.
        max_objs: fixed number of object slots `K`.

    Returns:
        With `h = H/s`, `w = W/s`, `K = max_objs`:
        `hm` float32 `[C, h, w]`, `ind` long `[K]`, `mask` float32 `[K]` (1 for real objects),
        `reg` float32 `[K, 2]`, `ltrb` float32 `[K, 4]` (cells), `boxes` float32 `[K, 4]` (xyxy cells),
        `ids` long `[K]` (−1 for padding/unknown), `cls` long `[K]` (0 for padding).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if len(input_size) != 2:
        raise ValueError(f"input_size must be (H, W), got {input_size}")
    in_h, in_w = int(input_size[0]), int(input_size[1])
    if in_h <= 0 or in_w <= 0 or in_h % stride or in_w % stride:
        raise ValueError(f"input_size must be positive and divisible by stride={stride}, got {input_size}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if max_objs < 1:
        raise ValueError(f"max_objs must be >= 1, got {max_objs}")

    boxes = torch.as_tensor(boxes, dtype=torch.float32).detach().cpu()
    classes = torch.as_tensor(classes, dtype=torch.long).cpu()
    ids = torch.as_tensor(ids, dtype=torch.long).cpu()
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape [M, 4], got {tuple(boxes.shape)}")
    m = boxes.shape[0]
    if classes.shape != (m,):
        raise ValueError(f"classes must have shape [{m}] (one per box), got {tuple(classes.shape)}")
    if ids.shape != (m,):
        raise ValueError(f"ids must have shape [{m}] (one per box), got {tuple(ids.shape)}")
    if m and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"classes must be in [0, {num_classes}), got {classes.tolist()}")

    h, w = in_h // stride, in_w // stride
    out = {
        "hm": torch.zeros((num_classes, h, w), dtype=torch.float32),
        "ind": torch.zeros(max_objs, dtype=torch.long),
        "mask": torch.zeros(max_objs, dtype=torch.float32),
        "reg": torch.zeros((max_objs, 2), dtype=torch.float32),
        "ltrb": torch.zeros((max_objs, 4), dtype=torch.float32),
        "boxes": torch.zeros((max_objs, 4), dtype=torch.float32),
        "ids": torch.full((max_objs,), -1, dtype=torch.long),
        "cls": torch.zeros(max_objs, dtype=torch.long),
    }

    # Clip to the image, drop boxes that vanish.
    x1, y1, x2, y2 = boxes.unbind(-1)
    boxes = torch.stack((x1.clamp(0, in_w), y1.clamp(0, in_h), x2.clamp(0, in_w), y2.clamp(0, in_h)), -1)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, classes, ids = boxes[keep], classes[keep], ids[keep]
    if boxes.shape[0] > max_objs:
        _LOG.warning(
            "build_targets: %d objects exceed max_objs=%d; keeping the first %d",
            boxes.shape[0],
            max_objs,
            max_objs,
        )
        boxes, classes, ids = boxes[:max_objs], classes[:max_objs], ids[:max_objs]
    n = boxes.shape[0]
    if n == 0:
        return out

    cells = boxes / stride  # [n, 4] xyxy in cells
    centre = (cells[:, :2] + cells[:, 2:]) / 2  # [n, 2] (cx, cy), float
    ct = centre.floor().long()
    ct[:, 0].clamp_(0, w - 1)
    ct[:, 1].clamp_(0, h - 1)

    out["ind"][:n] = ct[:, 1] * w + ct[:, 0]
    out["mask"][:n] = 1.0
    out["reg"][:n] = centre - ct.float()
    out["ltrb"][:n] = torch.cat((centre - cells[:, :2], cells[:, 2:] - centre), dim=1)
    out["boxes"][:n] = cells
    out["ids"][:n] = ids
    out["cls"][:n] = classes

    sizes = (cells[:, 2:] - cells[:, :2]).tolist()  # [n, 2] (w, h) in cells
    for k in range(n):
        radius = max(0, int(gaussian_radius(sizes[k][1], sizes[k][0])))
        draw_gaussian(out["hm"][int(classes[k])], (int(ct[k, 0]), int(ct[k, 1])), radius)
    return out
