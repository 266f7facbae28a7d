"""Head maps → detections: sigmoid, max-pool peak NMS, top-K over all classes, box and embedding read-out.

This is the coordinate-detection and appearance-detection read-out of the network (see DESIGN.md): boxes
come from the `wh` (left, top, right, bottom distances) and `reg` (sub-cell offset) maps at each peak, and
the appearance embedding is the `id` map's vector at the same cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ibntrack.structures import Detections

__all__ = ["decode", "gather_at"]


def gather_at(feature_map: Tensor, ind: Tensor) -> Tensor:
    """Read a feature map at flat cell indices.

    Args:
        feature_map: `[N, C, h, w]`.
        ind: long `[N, K]`, flat cell index `y·w + x` in `[0, h·w)`.

    Returns:
        `[N, K, C]`: `out[n, k] = feature_map[n, :, ind[n, k] // w, ind[n, k] % w]` (differentiable
        with respect to `feature_map`).
    """
    if feature_map.ndim != 4:
        raise ValueError(f"feature_map must have shape [N, C, h, w], got {tuple(feature_map.shape)}")
    n, c = feature_map.shape[:2]
    if ind.ndim != 2 or ind.shape[0] != n:
        raise ValueError(f"ind must have shape [{n}, K], got {tuple(ind.shape)}")
    flat = feature_map.flatten(2)  # [N, C, h*w]
    index = ind.long()[:, None, :].expand(n, c, ind.shape[1])  # [N, C, K]
    return flat.gather(2, index).transpose(1, 2)  # [N, C, K] -> [N, K, C]


@torch.no_grad()
def decode(
    outputs: dict[str, Tensor],
    conf_thresh: float = 0.4,
    top_k: int = 500,
    pool_size: int = 3,
    stride: int = 4,
) -> list[Detections]:
    """Decode the network's output maps into per-image detections.

    Args:
        outputs: the model's dict: `hm` heatmap logits `[N, C, h, w]`; `wh` non-negative (left, top,
            right, bottom) distances in cells `[N, 4, h, w]`; `reg` centre offset (dx, dy) `[N, 2, h, w]`
            (optional, zero offset when absent); `id` raw embeddings `[N, E, h, w]` (optional, `E = 0`
            when absent). Inputs are not modified.
        conf_thresh: keep peaks with sigmoid score strictly above this.
        top_k: peaks considered per image, over all classes, before thresholding.
        pool_size: odd window of the max-pool peak NMS (a cell is a peak if it equals its window's max).
        stride: network-input pixels per output cell (`H_in / h`).

    Returns:
        One `Detections` per image, sorted by score (descending): boxes xyxy in network-input pixels,
        classes = heatmap channel, embeddings L2-normalised float32 `[K, E]`.
    """
    for key in ("hm", "wh"):
        if key not in outputs:
            raise ValueError(f"outputs must contain {key!r}; got keys {sorted(outputs)}")
    hm_logits = outputs["hm"]
    if hm_logits.ndim != 4:
        raise ValueError(f"outputs['hm'] must have shape [N, C, h, w], got {tuple(hm_logits.shape)}")
    n, c, h, w = hm_logits.shape
    _check_map(outputs, "wh", (n, 4, h, w))
    if "reg" in outputs:
        _check_map(outputs, "reg", (n, 2, h, w))
    if "id" in outputs:
        _check_map(outputs, "id", (n, None, h, w))
    if pool_size < 1 or pool_size % 2 == 0:
        raise ValueError(f"pool_size must be a positive odd integer, got {pool_size}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if stride <= 0:
        raise ValueError(f"stride must be > 0, got {stride}")

    # 1. Scores and peak NMS: keep cells equal to the max of their window.
    heat = hm_logits.float().sigmoid()
    window_max = F.max_pool2d(heat, pool_size, stride=1, padding=pool_size // 2)
    heat = heat * (heat == window_max)

    # 2. Top-K over all classes and cells.
    k = min(top_k, c * h * w)
    scores, flat_idx = heat.reshape(n, c * h * w).topk(k, dim=1)  # [N, K], sorted descending
    # only peaks above the threshold are returned: a prefix of every row, so gather no further than the
    # longest prefix (the maps are read at tens of cells instead of top_k)
    k_keep = int((scores > conf_thresh).sum(dim=1).max()) if n else 0
    scores, flat_idx = scores[:, :k_keep], flat_idx[:, :k_keep]
    k = k_keep
    classes = flat_idx // (h * w)
    ind = flat_idx % (h * w)  # [N, K] cell index y*w + x
    xs = (ind % w).float()
    ys = (ind // w).float()

    # 3. Boxes: centre = cell + offset, sides = centre -/+ ltrb, scaled to input pixels.
    if "reg" in outputs:
        offset = gather_at(outputs["reg"].float(), ind)  # [N, K, 2]
        xs = xs + offset[..., 0]
        ys = ys + offset[..., 1]
    ltrb = gather_at(outputs["wh"].float(), ind)  # [N, K, 4]
    boxes = (
        torch.stack((xs - ltrb[..., 0], ys - ltrb[..., 1], xs + ltrb[..., 2], ys + ltrb[..., 3]), dim=-1)
        * stride
    )  # [N, K, 4]

    # 4. Embeddings at the peaks.
    if "id" in outputs:
        emb = F.normalize(gather_at(outputs["id"].float(), ind), dim=-1)  # [N, K, E]
    else:
        emb = boxes.new_zeros((n, k, 0))

    keep = scores > conf_thresh  # [N, K]
    boxes_np, scores_np = boxes.cpu().numpy(), scores.cpu().numpy()
    classes_np, emb_np, keep_np = classes.cpu().numpy(), emb.cpu().numpy(), keep.cpu().numpy()
    return [
        Detections(
            boxes=boxes_np[i][keep_np[i]],
            scores=scores_np[i][keep_np[i]],
            classes=classes_np[i][keep_np[i]],
            embeddings=emb_np[i][keep_np[i]],
        )
        for i in range(n)
    ]


def _check_map(outputs: dict[str, Tensor], key: str, shape: tuple[int | None, ...]) -> None:
    actual = tuple(outputs[key].shape)
    if len(actual) != len(shape) or any(e is not None and e != a for e, a in zip(shape, actual, strict=True)):
        expected = "[" + ", ".join("E" if e is None else str(e) for e in shape) + "]"
        raise ValueError(f"outputs[{key!r}] must have shape {expected}, got {list(actual)}")
