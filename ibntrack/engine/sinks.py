"""Where tracks go: MOTChallenge result files, JSON lines, annotated video.

A sink receives every tracked frame of one source (:meth:`Sink.write`) and then either
:meth:`Sink.close` (the source ended, or was interrupted: the output holds the frames tracked so far) or
:meth:`Sink.abort` (an error: no partial output is left behind). Every sink writes to a temporary file
renamed into place on ``close``, so a crash never leaves a truncated file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from ibntrack.data.mot import MOT_CLASS_IDS
from ibntrack.data.motio import write_results
from ibntrack.engine.visualize import Annotator, VideoWriter
from ibntrack.fileio import atomic_open
from ibntrack.tracking import Track

__all__ = ["JsonLinesSink", "MotSink", "Sink", "VideoSink", "open_sinks", "sink_paths"]


class Sink(Protocol):
    """Receives the tracks of one source, frame by frame."""

    path: Path

    def write(self, frame_id: int, frame_bgr: np.ndarray, tracks: Sequence[Track]) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def mot_class_ids(class_names: Sequence[str]) -> list[int]:
    """Column 8 of a result row per model class: the MOT class id (pedestrian 1, car 3, …) of a
    multi-class model, else empty (single class: ``-1`` in every row)."""
    if len(class_names) <= 1:
        return []
    return [MOT_CLASS_IDS.get(n.lower(), -1) for n in class_names]


class MotSink:
    """``<seq>.txt`` in MOTChallenge format, ``frame,id,x,y,w,h,score,class,-1,-1`` (written on close)."""

    def __init__(self, path: Path, class_names: Sequence[str]) -> None:
        self.path = Path(path)
        self._mot_class = mot_class_ids(class_names)
        self.rows: list[tuple] = []
        self.ids: set[int] = set()

    def write(self, frame_id: int, frame_bgr: np.ndarray, tracks: Sequence[Track]) -> None:
        for t in tracks:
            x1, y1, x2, y2 = (float(v) for v in t.box)
            cls = self._mot_class[int(t.cls)] if self._mot_class else -1
            self.rows.append((frame_id, t.track_id, x1, y1, x2 - x1, y2 - y1, float(t.score), cls))
            self.ids.add(t.track_id)

    def close(self) -> None:
        write_results(self.path, self.rows)

    def abort(self) -> None:
        self.rows = []


class JsonLinesSink:
    """``<seq>.jsonl``: one ``{"frame", "tracks": [{"id", "box_xyxy", "score", "cls"}]}`` line per frame."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        self._fh: IO = self._stack.enter_context(atomic_open(self.path))

    def write(self, frame_id: int, frame_bgr: np.ndarray, tracks: Sequence[Track]) -> None:
        line = {
            "frame": frame_id,
            "tracks": [
                {
                    "id": int(t.track_id),
                    "box_xyxy": [round(float(v), 2) for v in t.box],
                    "score": round(float(t.score), 4),
                    "cls": int(t.cls),
                }
                for t in tracks
            ],
        }
        self._fh.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._stack.close()

    def abort(self) -> None:
        error = RuntimeError(f"{self.path}: source failed")
        self._stack.__exit__(type(error), error, None)  # atomic_open deletes its temporary file


class VideoSink:
    """``<seq>.mp4``: the frames with their tracks drawn, H.264."""

    def __init__(self, path: Path, frame_rate: float, class_names: Sequence[str]) -> None:
        self.path = Path(path)
        self._annotator = Annotator(class_names=tuple(class_names))
        self._writer = VideoWriter(self.path, frame_rate)

    def write(self, frame_id: int, frame_bgr: np.ndarray, tracks: Sequence[Track]) -> None:
        self._writer.write(self._annotator.draw(frame_bgr, list(tracks), frame_id))

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


def sink_paths(out: Path, name: str, save_video: bool = False, save_json: bool = False) -> list[Path]:
    """The files the sinks of source ``name`` write under ``out`` (checked before any work starts)."""
    suffixes = [".txt"] + [".mp4"] * save_video + [".jsonl"] * save_json
    return [out / f"{name}{suffix}" for suffix in suffixes]


def open_sinks(
    out: Path,
    name: str,
    frame_rate: float,
    class_names: Sequence[str],
    save_video: bool = False,
    save_json: bool = False,
) -> tuple[MotSink, list[Sink]]:
    """The sinks of one source: the MOT result file (returned first, it counts the track ids), then the
    optional video and JSON lines. All of them, the MOT sink included, are in the list."""
    mot = MotSink(out / f"{name}.txt", class_names)
    sinks: list[Sink] = [mot]
    try:
        if save_video:
            sinks.append(VideoSink(out / f"{name}.mp4", frame_rate, class_names))
        if save_json:
            sinks.append(JsonLinesSink(out / f"{name}.jsonl"))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return mot, sinks
