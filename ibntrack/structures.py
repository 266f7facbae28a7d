"""Plain records passed between the decoder, the tracker and the engine.

`Detections` holds one image's detections as numpy arrays so the tracker (numpy in, numpy out) never
touches torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one image.

    Attributes:
        boxes: float32 `[N, 4]`, xyxy, in the pixel frame stated by the producer (`decode` gives
            network-input pixels; `rescale` maps them to original-image pixels).
        scores: float32 `[N]`, detection confidence in [0, 1].
        classes: int64 `[N]`, 0-based class index.
        embeddings: float32 `[N, E]`, L2-normalised appearance embeddings; `E` may be 0 (no ReID branch).

    Arrays are converted to the dtypes above on construction; shapes are validated and a mismatch raises
    `ValueError` naming the field.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        scores = np.asarray(self.scores, dtype=np.float32)
        classes = np.asarray(self.classes, dtype=np.int64)
        embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape [N, 4], got {boxes.shape}")
        n = boxes.shape[0]
        if scores.shape != (n,):
            raise ValueError(f"scores must have shape [{n}] (one per box), got {scores.shape}")
        if classes.shape != (n,):
            raise ValueError(f"classes must have shape [{n}] (one per box), got {classes.shape}")
        if embeddings.ndim != 2 or embeddings.shape[0] != n:
            raise ValueError(f"embeddings must have shape [{n}, E], got {embeddings.shape}")
        # Frozen dataclass: bypass the generated __setattr__ to store the normalised arrays.
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "embeddings", embeddings)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def emb_dim(self) -> int:
        """Embedding size `E` (0 when there is no appearance branch)."""
        return int(self.embeddings.shape[1])

    @classmethod
    def empty(cls, emb_dim: int = 0) -> Detections:
        """No detections, with embeddings of width `emb_dim`."""
        if emb_dim < 0:
            raise ValueError(f"emb_dim must be >= 0, got {emb_dim}")
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            classes=np.zeros((0,), np.int64),
            embeddings=np.zeros((0, emb_dim), np.float32),
        )

    def select(self, mask_or_indices: np.ndarray | list[int] | list[bool]) -> Detections:
        """The detections picked by a boolean mask `[N]` or an integer index array `[K]` (in that order)."""
        sel = np.asarray(mask_or_indices)
        if sel.dtype == np.bool_:
            if sel.shape != (len(self),):
                raise ValueError(
                    f"mask_or_indices: a boolean mask needs shape [{len(self)}], got {sel.shape}"
                )
        elif sel.size == 0:
            sel = sel.astype(np.int64)
        elif not np.issubdtype(sel.dtype, np.integer) or sel.ndim != 1:
            raise ValueError(
                f"mask_or_indices must be a boolean mask [N] or a 1-D integer index array, got dtype "
                f"{sel.dtype} and shape {sel.shape}"
            )
        return Detections(
            boxes=self.boxes[sel],
            scores=self.scores[sel],
            classes=self.classes[sel],
            embeddings=self.embeddings[sel],
        )

    def rescale(self, scale: float, pad_x: float, pad_y: float) -> Detections:
        """Undo a letterbox: map boxes from network-input pixels to original-image pixels.

        A letterbox maps original `x` to `x * scale + pad_x` (and `y` likewise), so this returns
        `(box - pad) / scale`. Other fields are shared unchanged.

        Args:
            scale: resize factor of the letterbox, > 0.
            pad_x: left padding in network-input pixels.
            pad_y: top padding in network-input pixels.
        """
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        pad = np.array([pad_x, pad_y, pad_x, pad_y], dtype=np.float32)
        boxes = (self.boxes - pad) / np.float32(scale)
        return Detections(boxes=boxes, scores=self.scores, classes=self.classes, embeddings=self.embeddings)
