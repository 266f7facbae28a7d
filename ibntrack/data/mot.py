"""MOTChallenge sequences: loading, ground truth and result files.

Layout of one sequence (MOTChallenge)::

    <seq>/seqinfo.ini     [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
                          (+ ours, optional: sceneKeywords=winter,snow,street  classNames=pedestrian,vehicle)
    <seq>/img1/000001.jpg ...
    <seq>/gt/gt.txt       frame,id,x,y,w,h,flag,class,visibility   (1-based frames; x, y top-left pixels)

Ground-truth files with 6-8 fields (no class / visibility) and the 10-field MOT15 layout
(``frame,id,x,y,w,h,flag,wx,wy,wz``) are read as pedestrians with visibility 1.

Classes. MOTChallenge class ids (MOT17/MOT20): 1 pedestrian, 2 person on vehicle, 3 car, 4 bicycle,
5 motorbike, 6 non-motorized vehicle, 7 static person, 8 distractor, 9-11 occluders, 12 reflection,
13 crowd. A *class map* sends MOT class ids to 0-based model classes; ids not in it are dropped. Without
one, the sequence's ``classNames`` decide (model class ``i`` is ``classNames[i]``, its MOT id from
:data:`MOT_CLASS_IDS`), else the MOT17 default ``{1: 0}`` (pedestrians only). Our synthetic sequences
write pedestrians as class 1 and vehicles as class 3 (car) with ``classNames=pedestrian,vehicle``, so they
load as model classes 0 (pedestrian) and 1 (vehicle).

Result files: ``frame,id,x,y,w,h,score,-1,-1,-1`` (1-based frames), written atomically. The file readers
and writers live in :mod:`ibntrack.data.motio` and are re-exported here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ibntrack.data.motio import (
    MOTFormatError,
    is_sequence_dir,
    read_gt,
    read_results,
    read_seqinfo,
    split_list,
    write_gt,
    write_results,
    write_seqinfo,
)

__all__ = [
    "Annotations",
    "DEFAULT_CLASS_MAP",
    "MOTFormatError",
    "MOT_CLASS_IDS",
    "Sequence",
    "class_map_from_names",
    "frame_path",
    "iter_frames",
    "load_sequence",
    "load_sequences",
    "read_gt",
    "read_results",
    "read_seqinfo",
    "write_gt",
    "write_results",
    "write_seqinfo",
]

_LOG = logging.getLogger(__name__)

#: MOTChallenge class ids by name (lower case); ``vehicle`` is our name for MOT's ``car``.
MOT_CLASS_IDS: dict[str, int] = {
    "pedestrian": 1,
    "person_on_vehicle": 2,
    "car": 3,
    "vehicle": 3,
    "bicycle": 4,
    "motorbike": 5,
    "non_motorized_vehicle": 6,
    "static_person": 7,
    "distractor": 8,
    "occluder": 9,
    "occluder_on_ground": 10,
    "occluder_full": 11,
    "reflection": 12,
    "crowd": 13,
}
#: MOT17 evaluation default: pedestrians (MOT class 1) are model class 0, everything else is dropped.
DEFAULT_CLASS_MAP: dict[int, int] = {1: 0}

_MIN_BOX_SIDE = 1.0  # pixels; a box narrower or lower than this after clipping is dropped
_CLIP_TOLERANCE = 1e-3  # pixels; boxes beyond the image by less than this are clipped silently (rounding)
_MAX_MISSING_LISTED = 5


@dataclass(frozen=True, eq=False)
class Annotations:
    """Ground truth of one frame.

    Attributes:
        boxes: float32 [M, 4], xyxy, original-image pixels.
        ids: int64 [M], identity labels local to the sequence (MOT ids, 1-based).
        classes: int64 [M], 0-based model classes (after the class map).
        visibility: float32 [M] in [0, 1].
    """

    boxes: np.ndarray
    ids: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @staticmethod
    def empty() -> Annotations:
        return Annotations(
            boxes=np.zeros((0, 4), np.float32),
            ids=np.zeros(0, np.int64),
            classes=np.zeros(0, np.int64),
            visibility=np.zeros(0, np.float32),
        )


@dataclass(frozen=True, eq=False)
class Sequence:
    """One MOTChallenge sequence with its (filtered) ground truth.

    Attributes:
        name: sequence name (``seqinfo.ini`` ``name`` or the directory name).
        path: the sequence directory.
        img_dir: the frame directory (``<path>/<imDir>``, usually ``img1``); may not exist (gt only).
        frame_rate: frames per second.
        width, height: image size in pixels.
        length: number of frames (frames are numbered 1..length).
        image_ext: frame file extension with the dot, e.g. ``.jpg``.
        scene: scene keywords (``sceneKeywords``), lower case; empty when unknown.
        class_names: model class names, index = 0-based model class.
        class_map: MOT class id -> model class used when loading.
        annotations: frame -> :class:`Annotations`; only frames with at least one kept box.
    """

    name: str
    path: Path
    img_dir: Path
    frame_rate: float
    width: int
    height: int
    length: int
    image_ext: str = ".jpg"
    scene: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ("pedestrian",)
    class_map: Mapping[int, int] = field(default_factory=lambda: dict(DEFAULT_CLASS_MAP))
    annotations: Mapping[int, Annotations] = field(default_factory=dict)

    @property
    def has_gt(self) -> bool:
        return (self.path / "gt" / "gt.txt").is_file()

    def num_boxes(self) -> int:
        return sum(len(a) for a in self.annotations.values())

    def get(self, frame: int) -> Annotations:
        """Annotations of ``frame`` (empty when the frame has none)."""
        return self.annotations.get(frame) or Annotations.empty()


def frame_path(seq: Sequence, frame: int) -> Path:
    """Path of the image of 1-based ``frame`` (``<img_dir>/000001.jpg``)."""
    return seq.img_dir / f"{int(frame):06d}{seq.image_ext}"


def iter_frames(
    seq: Sequence, start: int = 1, stop: int | None = None, step: int = 1
) -> Iterator[tuple[int, np.ndarray, Annotations]]:
    """Yields ``(frame, image_bgr uint8 [H, W, 3], annotations)`` for frames ``start..stop`` (inclusive).

    Raises:
        FileNotFoundError: a frame image is missing or unreadable.
    """
    import cv2

    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    stop = seq.length if stop is None else min(stop, seq.length)
    for frame in range(max(1, start), stop + 1, step):
        path = frame_path(seq, frame)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{seq.name}: cannot read frame {frame}: {path}")
        yield frame, image, seq.get(frame)


# ------------------------------------------------------------------------------------------------ loading


def class_map_from_names(class_names: Iterable[str]) -> dict[int, int]:
    """MOT class id -> model class for model classes named ``class_names`` (see :data:`MOT_CLASS_IDS`).

    Raises:
        ValueError: a name with no MOTChallenge class id, or two names with the same id.
    """
    mapping: dict[int, int] = {}
    for index, name in enumerate(class_names):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in MOT_CLASS_IDS:
            raise ValueError(
                f"class name {name!r} has no MOTChallenge class id; known: {sorted(MOT_CLASS_IDS)}"
            )
        mot_id = MOT_CLASS_IDS[key]
        if mot_id in mapping:
            raise ValueError(f"class names {list(class_names)} map two model classes to MOT class {mot_id}")
        mapping[mot_id] = index
    return mapping


def load_sequence(
    path: str | os.PathLike,
    class_map: Mapping[int, int] | None = None,
    min_visibility: float = 0.0,
    eval_only: bool = True,
    check_images: bool = True,
    class_names: Iterable[str] | None = None,
) -> Sequence:
    """Loads one MOTChallenge sequence directory.

    Args:
        path: the sequence directory (holding ``seqinfo.ini`` and/or ``img1/``, optionally ``gt/gt.txt``).
        class_map: MOT class id -> 0-based model class; other MOT classes are dropped. Default: built
            from ``class_names``, else from the sequence's ``classNames``, else ``{1: 0}`` (pedestrians).
        min_visibility: drop boxes whose visibility is below this (0 keeps all).
        eval_only: keep only rows whose evaluation flag (field 7) is non-zero.
        check_images: when ``img1/`` exists, raise if an annotated frame has no image file.
        class_names: model class names (index = model class) used to build the default class map.

    Returns:
        The :class:`Sequence`; sequences without ``gt/gt.txt`` (test data) have no annotations.

    Raises:
        FileNotFoundError: ``path`` is not a sequence directory, or annotated frames lack images.
        MOTFormatError: a malformed ``seqinfo.ini`` or ``gt.txt``.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"sequence directory not found: {path}")
    if not 0.0 <= min_visibility <= 1.0:
        raise ValueError(f"min_visibility must be in [0, 1], got {min_visibility}")
    info_path = path / "seqinfo.ini"
    info = read_seqinfo(info_path) if info_path.is_file() else {}
    name = info.get("name") or path.name
    img_dir = path / info.get("imdir", "img1")
    image_ext = info.get("imext", ".jpg")
    if not image_ext.startswith("."):
        image_ext = "." + image_ext
    frame_rate = _info_number(info, "framerate", info_path, None)
    width = _info_number(info, "imwidth", info_path, None)
    height = _info_number(info, "imheight", info_path, None)
    length = _info_number(info, "seqlength", info_path, None)
    images = sorted(p.name for p in img_dir.iterdir()) if img_dir.is_dir() else []
    if width is None or height is None:
        width, height = _size_from_images(img_dir, images, image_ext, path)
    if length is None:
        length = sum(1 for n in images if n.endswith(image_ext))
    if frame_rate is None:
        _LOG.warning("%s: no frameRate in seqinfo.ini, assuming 30", name)
        frame_rate = 30.0
    scene = split_list(info.get("scenekeywords", ""))
    seq_class_names = split_list(info.get("classnames", ""))

    if class_map is not None:
        cmap = {int(k): int(v) for k, v in class_map.items()}
        if any(v < 0 for v in cmap.values()):
            raise ValueError(f"class_map values must be 0-based model classes, got {cmap}")
        names = tuple(class_names) if class_names is not None else _names_for_map(cmap)
    elif class_names is not None:
        names = tuple(class_names)
        cmap = class_map_from_names(names)
    elif seq_class_names:
        names = seq_class_names
        try:
            cmap = class_map_from_names(names)
        except ValueError as exc:
            raise MOTFormatError(f"{info_path}: classNames: {exc}") from None
    else:
        names, cmap = ("pedestrian",), dict(DEFAULT_CLASS_MAP)

    gt_path = path / "gt" / "gt.txt"
    annotations: dict[int, Annotations] = {}
    if gt_path.is_file():
        rows = read_gt(gt_path)
        annotations = _build_annotations(
            rows, gt_path, name, int(width), int(height), cmap, min_visibility, eval_only
        )
        too_late = [f for f in annotations if f > length] if length else []
        if too_late:
            raise MOTFormatError(
                f"{gt_path}: frame {max(too_late)} is beyond seqLength={int(length)} of {info_path}"
            )
    if check_images and img_dir.is_dir() and annotations:
        present = set(images)
        missing = [f for f in sorted(annotations) if f"{f:06d}{image_ext}" not in present]
        if missing:
            shown = ", ".join(str(img_dir / f"{f:06d}{image_ext}") for f in missing[:_MAX_MISSING_LISTED])
            raise FileNotFoundError(
                f"{name}: {len(missing)} annotated frame(s) have no image file, first: {shown}"
            )
    return Sequence(
        name=name,
        path=path,
        img_dir=img_dir,
        frame_rate=float(frame_rate),
        width=int(width),
        height=int(height),
        length=int(length),
        image_ext=image_ext,
        scene=scene,
        class_names=names,
        class_map=cmap,
        annotations=annotations,
    )


def load_sequences(root: str | os.PathLike, **kwargs) -> list[Sequence]:
    """Loads every sequence under ``root``: ``root`` itself, ``<root>/<seq>`` or ``<root>/<split>/<seq>``.

    A directory holding ``seqinfo.ini`` or ``img1/`` is a sequence. Keyword arguments go to
    :func:`load_sequence`. Sequences are returned sorted by path.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no sequence.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root not found: {root}")
    if is_sequence_dir(root):
        return [load_sequence(root, **kwargs)]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_sequence_dir(child):
            found.append(child)
        else:
            found.extend(g for g in sorted(p for p in child.iterdir() if p.is_dir()) if is_sequence_dir(g))
    if not found:
        raise FileNotFoundError(
            f"no MOTChallenge sequence under {root} (looked for <root>/<seq> and <root>/<split>/<seq> "
            "directories holding seqinfo.ini or img1/)"
        )
    return [load_sequence(p, **kwargs) for p in found]


def _names_for_map(cmap: Mapping[int, int]) -> tuple[str, ...]:
    by_id: dict[int, str] = {}
    for name, mot_id in MOT_CLASS_IDS.items():
        by_id.setdefault(mot_id, name)
    names = [f"class{k}" for k in range(max(cmap.values(), default=-1) + 1)]
    for mot_id, model_class in sorted(cmap.items(), reverse=True):
        names[model_class] = by_id.get(mot_id, f"class{model_class}")
    return tuple(names)


def _info_number(info: dict[str, str], key: str, path: Path, default: float | None) -> float | None:
    if key not in info or info[key] == "":
        return default
    try:
        value = float(info[key])
    except ValueError:
        raise MOTFormatError(f"{path}: {key} is not a number: {info[key]!r}") from None
    if value <= 0:
        raise MOTFormatError(f"{path}: {key} must be positive, got {info[key]!r}")
    return value


def _size_from_images(img_dir: Path, images: list[str], ext: str, seq_path: Path) -> tuple[int, int]:
    import cv2

    for name in images:
        if name.endswith(ext):
            image = cv2.imread(str(img_dir / name), cv2.IMREAD_UNCHANGED)
            if image is not None:
                return int(image.shape[1]), int(image.shape[0])
    raise MOTFormatError(
        f"{seq_path}: image size unknown (no imWidth/imHeight in seqinfo.ini and no readable image)"
    )


def _build_annotations(
    rows: np.ndarray,
    gt_path: Path,
    name: str,
    width: int,
    height: int,
    cmap: Mapping[int, int],
    min_visibility: float,
    eval_only: bool,
) -> dict[int, Annotations]:
    """Filters gt rows [N, 9] and groups them by frame; clips boxes to the image, counting what changed."""
    keep = np.ones(len(rows), bool)
    if eval_only:
        keep &= rows[:, 6] != 0
    mot_class = rows[:, 7].astype(np.int64)
    model_class = np.full(len(rows), -1, np.int64)
    for mot_id, model_id in cmap.items():
        model_class[mot_class == mot_id] = model_id
    keep &= model_class >= 0
    keep &= rows[:, 8] >= min_visibility
    rows, model_class = rows[keep], model_class[keep]

    x1, y1, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    nonpositive = (w <= 0) | (h <= 0)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    clipped = boxes.copy()
    np.clip(clipped[:, 0::2], 0, width, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0, height, out=clipped[:, 1::2])
    changed = np.any(np.abs(clipped - boxes) > _CLIP_TOLERANCE, axis=1) & ~nonpositive
    outside = ~nonpositive & (
        (clipped[:, 2] - clipped[:, 0] < _MIN_BOX_SIDE) | (clipped[:, 3] - clipped[:, 1] < _MIN_BOX_SIDE)
    )
    n_clip = int(np.count_nonzero(changed & ~outside))
    n_bad, n_out = int(np.count_nonzero(nonpositive)), int(np.count_nonzero(outside))
    if n_clip or n_bad or n_out:
        _LOG.warning(
            "%s (%s): %d box(es) extend beyond the %dx%d image and were clipped; dropped %d box(es) of "
            "non-positive size and %d outside the image",
            name,
            gt_path,
            n_clip,
            width,
            height,
            n_bad,
            n_out,
        )
    good = ~nonpositive & ~outside
    rows, clipped, model_class = rows[good], clipped[good], model_class[good]

    annotations: dict[int, Annotations] = {}
    if len(rows) == 0:
        return annotations
    frames = rows[:, 0].astype(np.int64)
    order = np.lexsort((rows[:, 1], frames))
    frames, rows, clipped, model_class = frames[order], rows[order], clipped[order], model_class[order]
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    ends = np.r_[starts[1:], len(frames)]
    for s, e in zip(starts, ends, strict=True):
        annotations[int(frames[s])] = Annotations(
            boxes=clipped[s:e].astype(np.float32),
            ids=rows[s:e, 1].astype(np.int64),
            classes=model_class[s:e].copy(),
            visibility=np.clip(rows[s:e, 8], 0.0, 1.0).astype(np.float32),
        )
    return annotations
