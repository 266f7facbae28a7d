"""MOTChallenge files as the evaluation reads them: ground truth and result rows parsed and checked, each
error naming the file and the line (:class:`Rows`), and the sequences to score (:class:`SeqSpec`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ibntrack.data.motio import read_gt, read_seqinfo

__all__ = [
    "COL_CLASS",
    "COL_FLAG",
    "COL_FRAME",
    "COL_ID",
    "Rows",
    "SeqSpec",
    "check_frames",
    "check_unique_ids",
    "parse_gt_file",
    "parse_mot_file",
    "read_seq_spec",
    "sequence_dirs",
]

# Columns of a parsed file: frame, id, x, y, w, h, col7 (gt flag / result score), col8 (class).
COL_FRAME, COL_ID, COL_FLAG, COL_CLASS = 0, 1, 6, 7
MIN_COLUMNS = 6
DEFAULT_COL7 = 1.0  # gt flag "evaluate" / result score
NO_CLASS = -1.0


@dataclass(frozen=True)
class SeqSpec:
    name: str
    gt_file: Path
    length: int | None  # seqLength from seqinfo.ini, None if absent


@dataclass(frozen=True)
class Rows:
    """Parsed MOT rows: ``data [M, 8]`` float64 (frame, id, x, y, w, h, col7, col8), source lines."""

    path: Path
    data: np.ndarray
    lines: np.ndarray

    def select(self, mask: np.ndarray) -> Rows:
        return Rows(self.path, self.data[mask], self.lines[mask])


def sequence_dirs(gt_root_or_seqs: Any) -> list[Path]:
    if isinstance(gt_root_or_seqs, (str, os.PathLike)):
        root = Path(gt_root_or_seqs)
        if (root / "gt" / "gt.txt").is_file():
            return [root]
        if not root.is_dir():
            raise FileNotFoundError(f"ground-truth folder not found: {root}")
        seqs = sorted(p for p in root.iterdir() if (p / "gt" / "gt.txt").is_file())
        if not seqs:
            raise FileNotFoundError(f"no sequence with gt/gt.txt under {root}")
        return seqs
    if isinstance(gt_root_or_seqs, Iterable):
        seqs = [Path(getattr(s, "path", None) or s) for s in gt_root_or_seqs]
        if not seqs:
            raise ValueError("gt_root_or_seqs is an empty list of sequences")
        return seqs
    raise ValueError(
        "gt_root_or_seqs must be a folder of sequences, one sequence folder or a list of them, "
        f"got {type(gt_root_or_seqs).__name__}"
    )


def read_seq_spec(seq_dir: Path) -> SeqSpec:
    gt_file = seq_dir / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise FileNotFoundError(f"ground truth not found: {gt_file}")
    length = None
    ini = seq_dir / "seqinfo.ini"
    if ini.is_file():
        info = read_seqinfo(ini)  # MOTFormatError (a ValueError) names the file and the problem
        try:
            length = int(info["seqlength"])
        except (KeyError, ValueError):
            raise ValueError(f"{ini}: [Sequence] seqLength missing or not an integer") from None
        if length < 1:
            raise ValueError(f"{ini}: seqLength must be >= 1, got {length}")
    return SeqSpec(seq_dir.name, gt_file, length)


def parse_gt_file(path: Path) -> Rows:
    """Parse a ground-truth file with :func:`~ibntrack.data.motio.read_gt` (which knows the MOT15 layout).

    Missing columns get flag 1, class 1, visibility 1; ids must be >= 0 and sizes non-negative.
    """
    data = read_gt(path)[:, :8]  # [M, 8] frame, id, x, y, w, h, flag, class
    # read_gt keeps one row per non-blank line, in order: number the lines the same way.
    text = path.read_text(encoding="utf-8")
    lines = np.array([i for i, raw in enumerate(text.splitlines(), start=1) if raw.strip()], dtype=np.int64)
    rows = Rows(path, data, lines.reshape(-1))
    for bad, what in (
        (data[:, COL_ID] < 0, "id must be an integer >= 0"),
        ((data[:, 4] < 0) | (data[:, 5] < 0), "negative box size"),
    ):
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise ValueError(f"{path}:{rows.lines[i]}: {what} in ground truth")
    return rows


def parse_mot_file(path: Path) -> Rows:
    """Parse a result file (comma or whitespace separated, at least 6 columns) and check each value."""
    rows: list[list[float]] = []
    lines: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.replace(",", " ").split()
            if not fields:
                continue
            if len(fields) < MIN_COLUMNS:
                raise ValueError(
                    f"{path}:{lineno}: expected at least {MIN_COLUMNS} columns (frame,id,x,y,w,h,...), "
                    f"got {len(fields)}: {line.strip()!r}"
                )
            try:
                values = [float(v) for v in fields[:8]]
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: not a number in {line.strip()!r}") from exc
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{path}:{lineno}: non-finite value in {line.strip()!r}")
            frame, tid, _, _, w, h = values[:6]
            if not frame.is_integer() or frame < 1:
                raise ValueError(f"{path}:{lineno}: frame must be an integer >= 1, got {fields[0]}")
            if not tid.is_integer() or tid < 0:
                raise ValueError(f"{path}:{lineno}: id must be an integer >= 0, got {fields[1]}")
            if w < 0 or h < 0:
                raise ValueError(f"{path}:{lineno}: negative box size w={fields[4]} h={fields[5]}")
            values += [DEFAULT_COL7, NO_CLASS][len(values) - MIN_COLUMNS :]
            rows.append(values)
            lines.append(lineno)
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 8)
    return Rows(path, data, np.asarray(lines, dtype=np.int64))


def check_frames(rows: Rows, length: int) -> None:
    """Every frame within the sequence (1..length)."""
    bad = np.flatnonzero(rows.data[:, COL_FRAME] > length)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"{rows.path}:{rows.lines[i]}: frame {int(rows.data[i, COL_FRAME])} "
            f"outside the sequence (1..{length})"
        )


def check_unique_ids(rows: Rows) -> None:
    """No (class, id) twice in one frame."""
    frames, ids, classes = rows.data[:, COL_FRAME], rows.data[:, COL_ID], rows.data[:, COL_CLASS]
    order = np.lexsort((ids, classes, frames))
    same = (np.diff(frames[order]) == 0) & (np.diff(ids[order]) == 0) & (np.diff(classes[order]) == 0)
    if same.any():
        i = order[np.flatnonzero(same)[0] + 1]
        raise ValueError(
            f"{rows.path}:{rows.lines[i]}: id {int(ids[i])} appears twice in frame {int(frames[i])}"
        )
