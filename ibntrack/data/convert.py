"""Detection-only datasets into our MOTChallenge layout: ``ibntrack convert crowdhuman``.

CrowdHuman (``annotation_train.odgt``: one JSON object per line, ``{"ID": "273271,c9db000d5146c15",
"gtboxes": [{"tag": "person", "fbox": [x, y, w, h], "vbox": [...], "hbox": [...], "extra": {"ignore": 0,
...}}, ...]}``; images ``<IMAGES>/<ID>.jpg``) has boxes but no identities. It becomes one sequence folder::

    <out>/<name>/seqinfo.ini    name, imDir=img1, frameRate=1, seqLength, imWidth, imHeight, imExt=.jpg,
                                classNames=pedestrian
    <out>/<name>/img1/000001.jpg ...   every image letterboxed to one size (--size, default 1088x608)
    <out>/<name>/gt/gt.txt      frame,-1,x,y,w,h,flag,1,visibility   (identity -1: unknown)
    <out>/<name>/image_ids.txt  frame,CrowdHuman ID (where each frame came from)

Why letterboxed: a MOTChallenge sequence has one frame size (``imWidth``, ``imHeight``) and CrowdHuman's
images all differ; training letterboxes every frame to ``data.input_size`` anyway, so converting at that
size loses nothing at the default (the augmentation's zoom sees the converted pixels).

Boxes: ``--box full`` (``fbox``, the whole body, also where occluded; FairMOT's choice) or ``visible``
(``vbox``). They are clipped to the image; visibility is ``area(vbox ∩ fbox) / area(fbox)`` for full boxes
and 1 for visible ones. Identity −1 on every row: the box trains detection and is left out of the ReID loss
(:func:`ibntrack.data.identities.assign_global_ids` gives −1 no label). Ignore regions (``tag: mask``,
crowds and reflections, and boxes with ``extra.ignore: 1``) are written with flag 0, which the loader drops
(as MOT17's non-evaluated rows): they are neither positives nor, with ``--fill-ignore``, negatives — that
option paints them grey in the image so the network does not learn them as background.

Mixing with MOT data: ``data.train: [data/MOT17/train, data/crowdhuman]`` with
``data.train_weights: [1.0, 0.5]`` (see :mod:`ibntrack.data.mixing`). Detection-only data alone cannot train
the ReID branch (no identities): training needs at least one dataset with identities.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CrowdHumanRecord", "add_convert_parser", "convert_crowdhuman", "read_odgt"]

log = logging.getLogger(__name__)

_PAD = (127, 127, 127)  # the letterbox grey of ibntrack.data.transforms.letterbox
_IGNORE_TAGS = ("mask",)
_MIN_SIDE = 1.0  # pixels after letterboxing; smaller boxes are dropped


@dataclass(frozen=True)
class CrowdHumanRecord:
    """One validated line of an .odgt file.

    Attributes:
        line: 1-based line number in the file.
        image_id: the ``ID`` (the image is ``<ID>.jpg``).
        boxes: float64 [M, 4] xyxy original pixels (``fbox`` or ``vbox``).
        visibility: float64 [M] in [0, 1].
        ignore: bool [M], ignore regions (``tag: mask`` or ``extra.ignore: 1``).
    """

    line: int
    image_id: str
    boxes: np.ndarray
    visibility: np.ndarray
    ignore: np.ndarray


def _box(entry: dict, key: str, where: str) -> np.ndarray | None:
    value = entry.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{where}: {key!r} must be 4 numbers [x, y, w, h], got {value!r}")
    x, y, w, h = (float(v) for v in value)
    if not np.isfinite([x, y, w, h]).all() or w < 0 or h < 0:
        raise ValueError(f"{where}: {key!r} must be finite with w, h >= 0, got {value!r}")
    return np.array([x, y, x + w, y + h])


def _area(b: np.ndarray) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def read_odgt(path: str | os.PathLike, box: str = "full") -> Iterator[CrowdHumanRecord]:
    """Parses a CrowdHuman ``.odgt`` file line by line (empty lines are skipped).

    Args:
        path: the annotation file.
        box: ``"full"`` (``fbox``) or ``"visible"`` (``vbox``).

    Yields:
        One :class:`CrowdHumanRecord` per image.

    Raises:
        ValueError: a malformed line; the message names the file and the line number.
    """
    if box not in ("full", "visible"):
        raise ValueError(f"box must be 'full' or 'visible', got {box!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    key = "fbox" if box == "full" else "vbox"
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj: Any = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not a JSON object ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            image_id = obj.get("ID")
            if not isinstance(image_id, str) or not image_id or "/" in image_id or "\\" in image_id:
                raise ValueError(f"{where}: 'ID' must be a non-empty image name, got {image_id!r}")
            entries = obj.get("gtboxes", [])
            if not isinstance(entries, list):
                raise ValueError(f"{where}: 'gtboxes' must be a list, got {type(entries).__name__}")
            boxes, vis, ignore = [], [], []
            for j, entry in enumerate(entries):
                at = f"{where}: gtboxes[{j}]"
                if not isinstance(entry, dict) or not isinstance(entry.get("tag"), str):
                    raise ValueError(f"{at}: expected an object with a 'tag', got {entry!r}")
                extra = entry.get("extra") or {}
                if not isinstance(extra, dict):
                    raise ValueError(f"{at}: 'extra' must be an object, got {extra!r}")
                is_ignore = entry["tag"] in _IGNORE_TAGS or extra.get("ignore", 0) == 1
                b = _box(entry, key, at)
                fallback = _box(entry, "fbox", at) if key != "fbox" else b
                if b is None:
                    b = fallback  # ignore regions often carry an fbox only
                if b is None:
                    raise ValueError(f"{at}: no {key!r} (and no 'fbox')")
                if entry["tag"] != "person" and not is_ignore:
                    continue  # other tags are not pedestrians
                v = 1.0
                if key == "fbox":
                    vb = _box(entry, "vbox", at)
                    if vb is not None and _area(b) > 0:
                        inter = np.concatenate([np.maximum(b[:2], vb[:2]), np.minimum(b[2:], vb[2:])])
                        v = float(np.clip(_area(inter) / _area(b), 0.0, 1.0))
                boxes.append(b)
                vis.append(v)
                ignore.append(is_ignore)
            yield CrowdHumanRecord(
                line=number,
                image_id=image_id,
                boxes=np.array(boxes, np.float64).reshape(-1, 4),
                visibility=np.array(vis, np.float64),
                ignore=np.array(ignore, bool),
            )


def convert_crowdhuman(
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    box: str = "full",
    size: tuple[int, int] = (1088, 608),
    name: str | None = None,
    fill_ignore: bool = False,
    max_images: int | None = None,
    quality: int = 95,
) -> Path:
    """Writes CrowdHuman as one detection-only MOTChallenge sequence (see the module docstring).

    Args:
        annotations: ``annotation_train.odgt`` / ``annotation_val.odgt``.
        images: the folder holding ``<ID>.jpg``.
        out: folder to create the sequence in.
        box: ``"full"`` or ``"visible"`` boxes.
        size: frame size ``(W, H)`` every image is letterboxed to.
        name: sequence name (default ``crowdhuman-<annotation file stem>``).
        fill_ignore: paint ignore regions grey in the frames.
        max_images: convert only the first N images.
        quality: JPEG quality of the written frames.

    Returns:
        The sequence folder.

    Raises:
        ValueError: a malformed .odgt line (file and line named), bad arguments.
        FileNotFoundError: the annotation file, the image folder, or an image named by a line (the line
            is named).
    """
    import cv2

    from ibntrack.data.motio import write_gt, write_seqinfo
    from ibntrack.data.transforms import letterbox
    from ibntrack.fileio import atomic_write_text

    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive (W, H), got {size}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    images = Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    annotations = Path(annotations)
    name = name or f"crowdhuman-{annotations.stem.replace('annotation_', '')}"
    seq = Path(out) / name
    img_dir = seq / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows: list[list[float]] = []
    ids: list[str] = []
    frame = 0
    n_boxes = n_ignore = n_dropped = 0
    for rec in read_odgt(annotations, box=box):
        if max_images is not None and frame >= max_images:
            break
        src = images / f"{rec.image_id}.jpg"
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{annotations}:{rec.line}: image {src} is missing or unreadable")
        h0, w0 = image.shape[:2]
        boxes = rec.boxes.copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w0)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h0)
        canvas, scale, pad_x, pad_y = letterbox(image, (height, width), color=_PAD)
        boxes = boxes * scale + np.array([pad_x, pad_y, pad_x, pad_y])
        frame += 1
        ids.append(rec.image_id)
        for b, v, ign in zip(boxes, rec.visibility, rec.ignore, strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            if w < _MIN_SIDE or h < _MIN_SIDE:
                n_dropped += 1
                continue
            if ign and fill_ignore:
                x1, y1, x2, y2 = (int(round(c)) for c in b)
                canvas[y1:y2, x1:x2] = _PAD
            rows.append([frame, -1, b[0], b[1], w, h, 0 if ign else 1, 1, v])
            n_ignore += int(ign)
            n_boxes += int(not ign)
        if not cv2.imwrite(str(img_dir / f"{frame:06d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f"cannot write {img_dir / f'{frame:06d}.jpg'}")
    if frame == 0:
        raise ValueError(f"{annotations}: no images listed (empty .odgt file)")
    write_gt(seq / "gt" / "gt.txt", np.array(rows, np.float64).reshape(-1, 9))
    write_seqinfo(
        seq / "seqinfo.ini",
        name=name,
        frame_rate=1,
        length=frame,
        width=width,
        height=height,
        class_names=("pedestrian",),
    )
    atomic_write_text(seq / "image_ids.txt", "".join(f"{i},{n}\n" for i, n in enumerate(ids, start=1)))
    log.info(
        "%s: %d images, %d %s boxes (identity -1), %d ignore regions (flag 0), %d boxes under %g px dropped",
        seq, frame, n_boxes, box, n_ignore, n_dropped, _MIN_SIDE,
    )  # fmt: skip
    return seq


# ---------------------------------------------------------------------------------------------- the CLI


def add_convert_parser(sub: argparse._SubParsersAction) -> None:
    """``ibntrack convert crowdhuman ANNOTATIONS IMAGES --out DIR``."""
    from ibntrack.cliargs import positive_int as _positive_int
    from ibntrack.cliargs import size_wh as _size

    p = sub.add_parser(
        "convert",
        help="convert a detection-only dataset (CrowdHuman) into a MOTChallenge sequence (identity -1)",
        description="Boxes without identities train detection and are left out of the ReID loss; mix the "
        "result with MOT data in data.train (with data.train_weights).",
    )
    fmt = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    ch = fmt.add_parser("crowdhuman", help="CrowdHuman .odgt annotations + image folder")
    ch.add_argument("annotations", type=Path, help="annotation_train.odgt or annotation_val.odgt")
    ch.add_argument("images", type=Path, help="folder with <ID>.jpg")
    ch.add_argument("--out", type=Path, required=True, help="folder to write the sequence in")
    ch.add_argument(
        "--box",
        choices=("full", "visible"),
        default="full",
        help="full-body (fbox, default) or visible boxes",
    )
    ch.add_argument("--size", type=_size, default=(1088, 608), help="frame size WxH (default 1088x608)")
    ch.add_argument("--name", help="sequence name (default crowdhuman-<train|val>)")
    ch.add_argument("--fill-ignore", action="store_true", help="paint ignore regions grey in the frames")
    ch.add_argument("--max-images", type=_positive_int, help="convert only the first N images")
    ch.set_defaults(func=_run_crowdhuman)


def _run_crowdhuman(args: argparse.Namespace) -> int:
    path = convert_crowdhuman(
        args.annotations,
        args.images,
        args.out,
        box=args.box,
        size=args.size,
        name=args.name,
        fill_ignore=args.fill_ignore,
        max_images=args.max_images,
    )
    print(f"wrote {path}")
    return 0
