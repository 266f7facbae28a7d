"""Image transforms shared by training and inference: letterbox, tensor conversion, augmentations.

Boxes are numpy float ``[M, 4]`` xyxy in pixel-edge coordinates of the image they belong to (pixel ``i``
spans ``[i, i + 1)``). Every random choice comes from a ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MEAN",
    "STD",
    "AugmentConfig",
    "augment",
    "horizontal_flip",
    "hsv_jitter",
    "letterbox",
    "letterbox_boxes",
    "photometric",
    "random_affine",
    "to_tensor",
    "to_tensor_batch",
]

#: ImageNet normalisation, RGB order.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def letterbox(
    image_bgr: np.ndarray, size: tuple[int, int], color: tuple[int, int, int] = (127, 127, 127)
) -> tuple[np.ndarray, float, int, int]:
    """Resizes keeping the aspect ratio and pads to ``size``.

    Args:
        image_bgr: uint8 [h, w, 3].
        size: output ``(H, W)``.
        color: padding colour (BGR).

    Returns:
        ``(image uint8 [H, W, 3], scale, pad_x, pad_y)``: an original pixel coordinate ``x`` maps to
        ``x * scale + pad_x`` (and ``y * scale + pad_y``); undo with ``(x' - pad_x) / scale``.
    """
    out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"size must be positive (H, W), got {size}")
    h, w = image_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"image_bgr is empty: shape {image_bgr.shape}")
    scale = min(out_h / h, out_w / w)
    new_w, new_h = min(out_w, max(1, round(w * scale))), min(out_h, max(1, round(h * scale)))
    if (new_w, new_h) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image_bgr = cv2.resize(image_bgr, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (out_w - new_w) // 2, (out_h - new_h) // 2
    out = np.empty((out_h, out_w, 3), np.uint8)
    out[:] = np.asarray(color, np.uint8)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = image_bgr
    return out, float(scale), int(pad_x), int(pad_y)


def letterbox_boxes(boxes: np.ndarray, scale: float, pad_x: float, pad_y: float) -> np.ndarray:
    """Maps boxes float [M, 4] xyxy from original pixels to letterboxed pixels (a new array)."""
    return np.asarray(boxes, np.float32) * np.float32(scale) + np.array(
        [pad_x, pad_y, pad_x, pad_y], np.float32
    )


def to_tensor(image_bgr: np.ndarray) -> Tensor:
    """uint8 BGR [H, W, 3] -> float32 Tensor[3, H, W]: RGB in [0, 1] normalised by MEAN and STD."""
    return to_tensor_batch(image_bgr[None])[0]


def to_tensor_batch(images_bgr: np.ndarray | list[np.ndarray]) -> Tensor:
    """uint8 BGR [N, H, W, 3] (or a list of equal-size images) -> float32 Tensor[N, 3, H, W], normalised."""
    batch = np.stack(images_bgr) if isinstance(images_bgr, list) else np.asarray(images_bgr)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images_bgr must be [N, H, W, 3] BGR, got shape {batch.shape}")
    rgb = np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2))  # [N, H, W, 3] BGR -> [N, 3, H, W] RGB
    tensor = torch.from_numpy(rgb).to(torch.float32).div_(255.0)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return tensor.sub_(mean).div_(std)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (FairMOT-style).

    Attributes:
        degrees: rotation range ±degrees.
        translate: translation range ± fraction of the image size.
        scale: zoom range ``(low, high)``.
        shear: shear range ±degrees.
        hsv_h: hue shift range ± fraction of the full hue circle.
        hsv_s: saturation gain range ``1 ± hsv_s``.
        hsv_v: value gain range ``1 ± hsv_v``.
        flip: probability of a horizontal flip.
        min_area: boxes whose clipped area (pixels²) falls below this are dropped.
        min_visible: boxes with less than this fraction of their transformed area inside the image are
            dropped.
        border: fill colour (BGR) of uncovered pixels.
        photometric: ``"basic"`` (the HSV jitter only) or ``"strong"``: :func:`photometric` after the
            HSV jitter — brightness, contrast, gamma, colour balance, sensor noise and blur over wide
            ranges, so that a model trained on one visual style sees many (the "BN + strong photometric
            augmentation" baseline of the cross-domain experiment).
    """

    degrees: float = 5.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.5, 1.2)
    shear: float = 2.0
    hsv_h: float = 0.0
    hsv_s: float = 0.5
    hsv_v: float = 0.3
    flip: float = 0.5
    min_area: float = 8.0
    min_visible: float = 0.2
    border: tuple[int, int, int] = (127, 127, 127)
    photometric: str = "basic"

    def __post_init__(self) -> None:
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"photometric must be one of {PHOTOMETRIC}, got {self.photometric!r}")


#: Values of ``AugmentConfig.photometric`` / ``data.photometric``.
PHOTOMETRIC = ("basic", "strong")


def random_affine(
    image: np.ndarray,
    boxes: np.ndarray,
    rng: np.random.Generator,
    degrees: float = 5.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.5, 1.2),
    shear: float = 2.0,
    border: tuple[int, int, int] = (127, 127, 127),
    min_area: float = 8.0,
    min_visible: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rotation, zoom, shear and translation about the image centre (same output size).

    A box becomes the enclosing box of its four transformed corners, clipped to the image; it is dropped
    only when its clipped area is below ``min_area`` or below ``min_visible`` of its transformed area.

    Args:
        image: uint8 [H, W, 3].
        boxes: float [M, 4] xyxy pixels of ``image``.
        rng: the random generator.

    Returns:
        ``(image uint8 [H, W, 3], boxes float32 [K, 4], keep int64 [K])`` with ``keep`` the indices of the
        input boxes that survive (to select their ids and classes).
    """
    h, w = image.shape[:2]
    angle = rng.uniform(-degrees, degrees)
    zoom = rng.uniform(scale[0], scale[1])
    rot = np.eye(3)
    rot[:2] = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, zoom)
    sh = np.eye(3)
    sh[0, 1] = np.tan(np.radians(rng.uniform(-shear, shear)))
    sh[1, 0] = np.tan(np.radians(rng.uniform(-shear, shear)))
    centre = np.array([[1, 0, -w / 2.0], [0, 1, -h / 2.0], [0, 0, 1]])
    uncentre = np.array([[1, 0, w / 2.0], [0, 1, h / 2.0], [0, 0, 1]])
    tr = np.eye(3)
    tr[0, 2] = rng.uniform(-translate, translate) * w
    tr[1, 2] = rng.uniform(-translate, translate) * h
    matrix = tr @ uncentre @ sh @ centre @ rot  # [3, 3], pixel-centre coordinates
    out = cv2.warpAffine(
        image, matrix[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=tuple(int(c) for c in border)
    )
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return out, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    # corners in pixel-edge coordinates -> pixel centres (-0.5) -> transform -> edges (+0.5)
    xs = boxes[:, [0, 2, 2, 0]] - 0.5
    ys = boxes[:, [1, 1, 3, 3]] - 0.5
    tx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] + 0.5  # [M, 4]
    ty = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] + 0.5
    moved = np.stack([tx.min(1), ty.min(1), tx.max(1), ty.max(1)], axis=1)
    clipped = moved.copy()
    np.clip(clipped[:, 0::2], 0, w, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0, h, out=clipped[:, 1::2])
    area_moved = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    area_clipped = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = np.flatnonzero(
        (area_clipped >= min_area) & (area_clipped >= min_visible * np.maximum(area_moved, 1e-9))
    )
    return out, clipped[keep].astype(np.float32), keep.astype(np.int64)


def hsv_jitter(
    image: np.ndarray, rng: np.random.Generator, hue: float = 0.0, saturation: float = 0.5, value: float = 0.3
) -> np.ndarray:
    """Random hue shift (± ``hue`` of the circle) and saturation / value gains (``1 ± s``, ``1 ± v``).

    Args:
        image: uint8 BGR [H, W, 3].

    Returns:
        A new uint8 BGR image.
    """
    dh = rng.uniform(-hue, hue) * 180.0
    gs = 1.0 + rng.uniform(-saturation, saturation)
    gv = 1.0 + rng.uniform(-value, value)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    x = np.arange(256, dtype=np.float64)
    lut = (
        np.stack([np.mod(x + dh, 180.0), np.clip(x * gs, 0, 255), np.clip(x * gv, 0, 255)], axis=1)
        .round()
        .astype(np.uint8)
    )  # [256, 3], one column per channel
    hsv = cv2.LUT(hsv, lut[:, None, :])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strong photometric augmentation: every colour-space change a camera or the weather can make to a
    scene without moving it, each drawn independently.

    In order, on float pixels ``x`` in [0, 1]: brightness gain ``x·g``, ``g`` log-uniform in [0.3, 1.6];
    contrast ``m + c·(x - m)`` about the image mean ``m``, ``c`` in [0.4, 1.5]; gamma ``x**γ``, ``γ``
    log-uniform in [0.5, 2]; colour balance, one gain in [0.7, 1.3] per channel; then, each with
    probability 0.5, Gaussian sensor noise (σ up to 12 grey levels) and Gaussian blur (σ up to 1.5 px).

    Args:
        image: uint8 BGR [H, W, 3].

    Returns:
        A new uint8 BGR image of the same shape.
    """
    x = image.astype(np.float32) * (1.0 / 255.0)
    x *= np.float32(np.exp(rng.uniform(np.log(0.3), np.log(1.6))))
    mean = x.mean()
    x = mean + np.float32(rng.uniform(0.4, 1.5)) * (x - mean)
    np.clip(x, 0.0, 1.0, out=x)
    x **= np.float32(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    x *= rng.uniform(0.7, 1.3, size=3).astype(np.float32)  # per BGR channel
    x *= 255.0
    if rng.random() < 0.5:
        x += rng.normal(0.0, rng.uniform(0.0, 12.0), size=x.shape).astype(np.float32)
    blur = rng.uniform(0.0, 1.5) if rng.random() < 0.5 else 0.0
    out = np.clip(x, 0, 255).round().astype(np.uint8)
    if blur > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    return out


def horizontal_flip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirrors the image left-right: ``x -> W - x`` for boxes float [M, 4] xyxy (new arrays)."""
    w = image.shape[1]
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    flipped = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], axis=1)
    return np.ascontiguousarray(image[:, ::-1]), flipped


def augment(
    image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random affine, HSV jitter, strong photometric changes (``config.photometric == "strong"``) and
    horizontal flip, in that order.

    Returns:
        ``(image, boxes float32 [K, 4], keep int64 [K])`` as :func:`random_affine`.
    """
    image, boxes, keep = random_affine(
        image, boxes, rng, config.degrees, config.translate, config.scale, config.shear, config.border,
        config.min_area, config.min_visible,
    )  # fmt: skip
    if config.hsv_h > 0 or config.hsv_s > 0 or config.hsv_v > 0:
        image = hsv_jitter(image, rng, config.hsv_h, config.hsv_s, config.hsv_v)
    if config.photometric == "strong":
        image = photometric(image, rng)
    if rng.random() < config.flip:
        image, boxes = horizontal_flip(image, boxes)
    return image, boxes, keep
