"""MOTChallenge text files: ``seqinfo.ini``, ground truth and result files.

Ground truth: ``frame,id,x,y,w,h,flag,class,visibility`` (1-based frames, x/y top-left pixels; 6-8 field
files and the 10-field MOT15 layout are accepted). Results: ``frame,id,x,y,w,h,score,-1,-1,-1``. Files are
written atomically (a temporary file in the same directory, then ``os.replace``); a malformed line raises
:class:`MOTFormatError` naming the file, the line number and the problem.
"""

from __future__ import annotations

import configparser
import math
import os
from collections.abc import Iterable
from collections.abc import Sequence as SequenceABC
from pathlib import Path

import numpy as np

from ibntrack.fileio import atomic_write_text

__all__ = [
    "MOTFormatError",
    "read_gt",
    "read_results",
    "is_sequence_dir",
    "read_seqinfo",
    "split_list",
    "write_gt",
    "write_results",
    "write_seqinfo",
]

_GT_FIELDS = ("frame", "id", "x", "y", "w", "h", "flag", "class", "visibility")
_RESULT_FIELDS = ("frame", "id", "x", "y", "w", "h", "score")


class MOTFormatError(ValueError):
    """A MOTChallenge file that cannot be read: names the file, the line and what is wrong."""


# ----------------------------------------------------------------------------------------------- seqinfo


def is_sequence_dir(path: str | os.PathLike) -> bool:
    """A MOTChallenge sequence folder: one holding ``seqinfo.ini`` or ``img1/`` (the one definition)."""
    path = Path(path)
    return (path / "seqinfo.ini").is_file() or (path / "img1").is_dir()


def split_list(text: str) -> tuple[str, ...]:
    """A list field of ``seqinfo.ini`` (``sceneKeywords``, ``classNames``): comma- or semicolon-separated
    words, stripped and lower-cased, empty ones dropped."""
    return tuple(w.strip().lower() for w in text.replace(";", ",").split(",") if w.strip())


def read_seqinfo(path: str | os.PathLike) -> dict[str, str]:
    """The ``[Sequence]`` section of a ``seqinfo.ini`` as a dict with lower-case keys."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise MOTFormatError(f"{path}: not a valid seqinfo.ini: {exc}") from None
    except UnicodeDecodeError as exc:
        raise MOTFormatError(f"{path}: not a UTF-8 text file ({exc})") from None
    if not parser.has_section("Sequence"):
        raise MOTFormatError(f"{path}: missing the [Sequence] section")
    return {k.lower(): v.strip() for k, v in parser.items("Sequence")}


def write_seqinfo(
    path: str | os.PathLike,
    name: str,
    frame_rate: float,
    length: int,
    width: int,
    height: int,
    image_ext: str = ".jpg",
    scene: Iterable[str] = (),
    class_names: Iterable[str] = (),
) -> Path:
    """Writes ``seqinfo.ini`` (atomically) to ``path`` (a file path or a sequence directory)."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".ini":
        path = path / "seqinfo.ini"
    rate = int(frame_rate) if float(frame_rate).is_integer() else frame_rate
    lines = [
        "[Sequence]",
        f"name={name}",
        "imDir=img1",
        f"frameRate={rate}",
        f"seqLength={int(length)}",
        f"imWidth={int(width)}",
        f"imHeight={int(height)}",
        f"imExt={image_ext}",
    ]
    scene = tuple(scene)
    class_names = tuple(class_names)
    if scene:
        lines.append("sceneKeywords=" + ",".join(scene))
    if class_names:
        lines.append("classNames=" + ",".join(class_names))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# -------------------------------------------------------------------------------------------- text files


def _parse_rows(
    path: Path, names: tuple[str, ...], min_fields: int, max_fields: int, class_field: int | None = None
) -> np.ndarray:
    """Parses a comma-separated numeric file into float64 [N, max_fields] (missing fields are NaN).

    Frame and id (fields 1-2) must be integers, and so must ``class_field`` (0-based) in rows of at most
    9 fields (in 10-field MOT15 rows that field is a world coordinate).

    Raises:
        MOTFormatError: naming the file, the 1-based line number and the problem.
    """
    rows: list[list[float]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MOTFormatError(f"{path}: not a text file ({exc})") from exc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(",") if "," in line else line.split()
        if parts and parts[-1].strip() == "":
            parts = parts[:-1]  # tolerate one trailing comma
        if not min_fields <= len(parts) <= max_fields:
            raise MOTFormatError(
                f"{path}, line {lineno}: expected {min_fields} to {max_fields} comma-separated fields "
                f"({','.join(names[:min_fields])},...), got {len(parts)}: {raw!r}"
            )
        values = []
        for k, part in enumerate(parts):
            try:
                value = float(part)
            except ValueError:
                label = names[k] if k < len(names) else f"field {k + 1}"
                raise MOTFormatError(
                    f"{path}, line {lineno}: {label} (field {k + 1}) is not a number: {part.strip()!r}"
                ) from None
            if not math.isfinite(value):
                label = names[k] if k < len(names) else f"field {k + 1}"
                raise MOTFormatError(
                    f"{path}, line {lineno}: {label} (field {k + 1}) is not finite: {part.strip()!r}"
                )
            values.append(value)
        integer_fields = (0, 1) if class_field is None or len(values) > 9 else (0, 1, class_field)
        for k in integer_fields:
            if k < len(values) and not values[k].is_integer():
                raise MOTFormatError(
                    f"{path}, line {lineno}: {names[k]} must be an integer, got {parts[k].strip()!r}"
                )
        if values[0] < 1:
            raise MOTFormatError(f"{path}, line {lineno}: frame numbers are 1-based, got {parts[0]!r}")
        rows.append(values + [math.nan] * (max_fields - len(values)))
    if not rows:
        return np.zeros((0, max_fields), np.float64)
    return np.asarray(rows, np.float64)


def read_gt(path: str | os.PathLike) -> np.ndarray:
    """Reads a ground-truth file into float64 [N, 9]: frame, id, x, y, w, h, flag, class, visibility.

    Missing columns default to flag 1, class 1 (pedestrian), visibility 1; the MOT15 10-field layout
    (world coordinates in fields 8-10) is read the same way.

    Raises:
        MOTFormatError: a malformed line (file name, line number and what is wrong).
    """
    path = Path(path)
    rows = _parse_rows(path, _GT_FIELDS, min_fields=6, max_fields=10, class_field=7)
    if rows.shape[1] and rows.shape[0]:
        mot15 = ~np.isnan(rows[:, 9])
        rows[mot15, 7:9] = np.nan  # MOT15: fields 8-10 are world coordinates, not class / visibility
    rows = rows[:, :9]
    for col, default in ((6, 1.0), (7, 1.0), (8, 1.0)):
        rows[np.isnan(rows[:, col]), col] = default
    return rows


def write_gt(path: str | os.PathLike, rows: np.ndarray | Iterable[SequenceABC[float]]) -> Path:
    """Writes a ground-truth file atomically.

    Args:
        path: destination (``<seq>/gt/gt.txt``).
        rows: [N, 9] ``frame, id, x, y, w, h, flag, class, visibility`` with x, y the top-left corner
            and w, h the size in pixels (MOT ``xywh``); sorted by frame then id on writing.
    """
    arr = _as_rows(rows, 9, "rows")
    order = np.lexsort((arr[:, 1], arr[:, 0]))
    lines = [
        f"{int(f)},{int(i)},{_num(x)},{_num(y)},{_num(w)},{_num(h)},{int(fl)},{int(c)},{_num(v, 4)}"
        for f, i, x, y, w, h, fl, c, v in arr[order]
    ]
    path = Path(path)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def write_results(path: str | os.PathLike, rows: np.ndarray | Iterable[SequenceABC[float]]) -> Path:
    """Writes a MOTChallenge result file atomically: ``frame,id,x,y,w,h,score,-1,-1,-1``.

    Args:
        path: destination, e.g. ``results/MOT17-02.txt``.
        rows: [N, 7] ``frame (1-based), track id, x, y, w, h, score``, boxes MOT ``xywh`` (top-left + size)
            in original-image pixels, or [N, 8] with the MOT class id (1 pedestrian, 3 car, ...) last,
            written in column 8 for multi-class results (``-1`` = no class, as MOTChallenge expects).
            Sorted by frame then id on writing.
    """
    arr = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.float64)
    width = 8 if arr.ndim == 2 and arr.shape[1] >= 8 else 7
    arr = _as_rows(arr, width, "rows")
    cls = arr[:, 7] if width == 8 else np.full(len(arr), -1.0)
    order = np.lexsort((arr[:, 1], arr[:, 0]))
    lines = [
        f"{int(f)},{int(i)},{_num(x)},{_num(y)},{_num(w)},{_num(h)},{_num(s, 4)},{int(c)},-1,-1"
        for (f, i, x, y, w, h, s), c in zip(arr[order, :7], cls[order], strict=True)
    ]
    path = Path(path)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def read_results(path: str | os.PathLike) -> np.ndarray:
    """Reads a MOTChallenge result file into float64 [N, 7]: frame, id, x, y, w, h, score (xywh pixels).

    Raises:
        MOTFormatError: a malformed line (file name, line number and what is wrong).
    """
    rows = _parse_rows(Path(path), _RESULT_FIELDS + ("x3d", "y3d", "z3d"), min_fields=6, max_fields=10)
    rows = rows[:, :7]
    rows[np.isnan(rows[:, 6]), 6] = 1.0
    return rows


def _as_rows(rows: np.ndarray | Iterable[SequenceABC[float]], width: int, name: str) -> np.ndarray:
    arr = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, width), np.float64)
    if arr.ndim != 2 or arr.shape[1] < width:
        raise ValueError(f"{name} must have shape [N, {width}], got {list(arr.shape)}")
    return arr[:, :width]


def _num(value: float, digits: int = 2) -> str:
    """Compact decimal: integers without a fraction, otherwise at most ``digits`` decimals."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
