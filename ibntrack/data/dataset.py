"""The training dataset: annotated MOTChallenge frames -> (network input, FairMOT targets).

Several sequences (from one or several datasets) are mixed with globally unique identity labels
(:func:`ibntrack.data.identities.assign_global_ids`). Each item is deterministic given
``(seed, epoch, index)``; call :meth:`MOTDataset.set_epoch` before each epoch (with ``DataLoader``
workers, use ``persistent_workers=False`` so the workers receive the new epoch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ibntrack.data.identities import assign_global_ids
from ibntrack.data.mot import Sequence, frame_path
from ibntrack.data.motio import MOTFormatError
from ibntrack.data.transforms import AugmentConfig, augment, letterbox, letterbox_boxes, to_tensor

__all__ = ["MOTDataset"]

_LOG = logging.getLogger(__name__)


class MOTDataset(Dataset):
    """Annotated frames of MOTChallenge sequences as training samples.

    Args:
        sequences: loaded :class:`~ibntrack.data.mot.Sequence` objects (with annotations; their class maps
            give the 0-based classes).
        input_size: network input ``(H, W)`` (multiples of 32 for the model).
        num_classes: number of model classes; every annotation class must be below it.
        augment: apply random affine, HSV jitter and flips.
        max_objs: fixed number of target slots per image (see ``build_targets``).
        seed: base seed of the augmentation.
        frame_step: use every ``frame_step``-th frame of each sequence (frames 1, 1 + step, ...).
        augment_config: augmentation parameters (default :class:`AugmentConfig`).

    Attributes:
        num_ids: number of distinct identities over all sequences (the ReID classifier's classes).
        identity_counts: identities contributed by each sequence (name -> count).
        identity_map: the :class:`~ibntrack.data.identities.IdentityMap`.
        class_names: model class names (index = class).
        samples: ``(sequence index, frame)`` of each item.

    Items:
        ``(image, targets)``: ``image`` float32 Tensor[3, H, W] (RGB, ImageNet-normalised, letterboxed and
        augmented); ``targets`` the dict of ``ibntrack.ops.targets.build_targets`` with global identity
        labels (-1 for unknown identities).
    """

    def __init__(
        self,
        sequences: Iterable[Sequence],
        input_size: tuple[int, int] = (608, 1088),
        num_classes: int = 1,
        augment: bool = True,
        max_objs: int = 256,
        seed: int = 0,
        frame_step: int = 1,
        augment_config: AugmentConfig | None = None,
    ) -> None:
        self.sequences = list(sequences)
        if not self.sequences:
            raise ValueError("sequences is empty: MOTDataset needs at least one sequence")
        if len(input_size) != 2 or int(input_size[0]) <= 0 or int(input_size[1]) <= 0:
            raise ValueError(f"input_size must be positive (H, W), got {input_size}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if max_objs < 1:
            raise ValueError(f"max_objs must be >= 1, got {max_objs}")
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.num_classes = int(num_classes)
        self.augment = bool(augment)
        self.max_objs = int(max_objs)
        self.seed = int(seed)
        self.frame_step = int(frame_step)
        self.augment_config = augment_config or AugmentConfig()
        self.epoch = 0
        self.class_names = self._check_classes()
        self.samples: list[tuple[int, int]] = [
            (i, frame)
            for i, seq in enumerate(self.sequences)
            for frame in sorted(seq.annotations)
            if (frame - 1) % self.frame_step == 0 and len(seq.annotations[frame]) > 0
        ]
        if not self.samples:
            names = ", ".join(s.name for s in self.sequences[:5]) + (
                ", ..." if len(self.sequences) > 5 else ""
            )
            raise ValueError(
                f"no annotated frames in {len(self.sequences)} sequence(s) ({names}): ground truth missing "
                "(test data?) or removed by the class / visibility filters"
            )
        self.identity_map = assign_global_ids(self.sequences)
        self.num_ids = self.identity_map.num_ids
        self.identity_counts = self.identity_map.counts
        _LOG.info(
            "MOTDataset: %d frames from %d sequences, %d identities, classes %s",
            len(self.samples), len(self.sequences), self.num_ids, list(self.class_names),
        )  # fmt: skip

    def _check_classes(self) -> tuple[str, ...]:
        """Model class names; raises if two sequences give one model class different meanings (different
        names and different MOT class ids) or a class is not below ``num_classes``."""
        names: list[str] = []
        sources: list[set[int]] = []  # MOT class ids seen for each model class
        for seq in self.sequences:
            for k, name in enumerate(seq.class_names):
                mot_ids = {m for m, c in seq.class_map.items() if c == k}
                if k >= len(names):
                    names.append(name)
                    sources.append(set(mot_ids))
                elif names[k] != name and not (mot_ids & sources[k]):
                    raise ValueError(
                        f"sequence {seq.name} calls model class {k} {name!r} (MOT classes "
                        f"{sorted(mot_ids)}), another sequence calls it {names[k]!r} (MOT classes "
                        f"{sorted(sources[k])}): load all sequences with the same class_names / class_map"
                    )
                else:
                    sources[k] |= mot_ids
            top = max((int(a.classes.max()) for a in seq.annotations.values() if len(a)), default=-1)
            if top >= self.num_classes:
                raise ValueError(
                    f"sequence {seq.name} has model class {top} but num_classes={self.num_classes}; "
                    f"its classes are {list(seq.class_names)}"
                )
        names = names[: self.num_classes]
        return tuple(names) + tuple(f"class{k}" for k in range(len(names), self.num_classes))

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch used to seed the augmentation (items depend on ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The letterboxed, augmented sample before tensor conversion.

        Returns:
            ``(image uint8 BGR [H, W, 3], boxes float32 [K, 4] xyxy input pixels, classes int64 [K],
            ids int64 [K] global identity labels)``.
        """
        seq_index, frame = self.samples[index]
        seq = self.sequences[seq_index]
        path = frame_path(seq, frame)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{seq.name}: cannot read frame {frame}: {path}")
        if image.shape[:2] != (seq.height, seq.width):  # gt boxes are in the sequence's pixel frame
            raise MOTFormatError(
                f"{path}: the image is {image.shape[1]}x{image.shape[0]} but sequence {seq.name} is "
                f"{seq.width}x{seq.height} (seqinfo.ini imWidth/imHeight, else its first image); "
                "every frame of a sequence must have that size"
            )
        ann = seq.annotations[frame]
        image, scale, pad_x, pad_y = letterbox(image, self.input_size)
        boxes = letterbox_boxes(ann.boxes, scale, pad_x, pad_y)
        classes = ann.classes.astype(np.int64)
        ids = self.identity_map.to_global(seq_index, ann.ids)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, boxes, keep = augment(image, boxes, rng, self.augment_config)
            classes, ids = classes[keep], ids[keep]
        return image, boxes.astype(np.float32), classes, ids

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        from ibntrack.ops.targets import build_targets  # lazy: keeps the data package importable alone

        if not 0 <= index < len(self.samples):
            raise IndexError(f"index {index} out of range for {len(self.samples)} samples")
        image, boxes, classes, ids = self.load(index)
        targets = build_targets(
            torch.from_numpy(boxes).reshape(-1, 4),
            torch.from_numpy(classes),
            torch.from_numpy(ids),
            self.input_size,
            self.num_classes,
            stride=4,
            max_objs=self.max_objs,
        )
        return to_tensor(image), targets
