"""Annotated output video: boxes coloured by track id, id labels, short trails, written as H.264 with PyAV."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ibntrack.fileio import remove_stale_temps, temp_path

__all__ = ["color_for_id", "Annotator", "VideoWriter"]


def color_for_id(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for a track id (golden-ratio hue walk)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


class Annotator:
    """Draws tracks on frames and remembers the last ``trail`` centres of each id.

    Args:
        trail: number of past centres drawn as a trail (0 disables trails).
        class_names: names shown beside the id for multi-class models.
    """

    def __init__(self, trail: int = 20, class_names: Sequence[str] = ()) -> None:
        self.trail = trail
        self.class_names = tuple(class_names)
        self._history: dict[int, deque] = {}

    def draw(self, frame_bgr: np.ndarray, tracks: Sequence, frame_id: int | None = None) -> np.ndarray:
        """Returns a copy of ``frame_bgr`` (``[H, W, 3] uint8``) with ``tracks`` drawn on it.

        ``tracks`` are objects with ``track_id``, ``box`` (xyxy, frame pixels) and ``cls``.
        """
        out = frame_bgr.copy()
        h = out.shape[0]
        thick = max(1, round(h / 360))
        scale = max(0.4, h / 1080)
        live = set()
        for t in tracks:
            tid = int(t.track_id)
            live.add(tid)
            color = color_for_id(tid)
            x1, y1, x2, y2 = (int(round(v)) for v in t.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
            label = str(tid)
            if len(self.class_names) > 1 and 0 <= int(t.cls) < len(self.class_names):
                label = f"{tid} {self.class_names[int(t.cls)]}"
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            cv2.rectangle(out, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, y1), color, -1)
            cv2.putText(
                out,
                label,
                (x1 + 1, max(th, y1 - 3)),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (0, 0, 0),
                thick,
                cv2.LINE_AA,
            )
            if self.trail:
                pts = self._history.setdefault(tid, deque(maxlen=self.trail))
                pts.append(((x1 + x2) // 2, y2))
                if len(pts) > 1:
                    cv2.polylines(out, [np.array(pts, np.int32)], False, color, thick, cv2.LINE_AA)
        for tid in list(self._history):
            if tid not in live:
                del self._history[tid]
        if frame_id is not None:
            cv2.putText(
                out,
                f"frame {frame_id}",
                (8, int(24 * scale + 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                thick,
                cv2.LINE_AA,
            )
        return out


class VideoWriter:
    """H.264 (yuv420p) mp4 writer on PyAV, written to a temporary name and renamed on :meth:`close`.

    A crash mid-way therefore never leaves a truncated file that looks complete.

    Args:
        path: output ``.mp4`` path.
        frame_rate: frames per second.
        crf: x264 constant rate factor (lower is better quality).
    """

    def __init__(self, path: str | Path, frame_rate: float = 30.0, crf: int = 23) -> None:
        try:
            import av
        except ImportError as exc:  # pragma: no cover - av is a dependency
            raise ImportError("writing video needs PyAV: pip install av") from exc
        self._av = av
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path)  # a killed earlier run's partial video
        self._tmp = temp_path(self.path, suffix=f".partial{self.path.suffix}")
        self._container: Any = av.open(str(self._tmp), mode="w", format="mp4")
        from fractions import Fraction

        self._rate = Fraction(frame_rate).limit_denominator(1001)
        self._stream: Any = None
        self._crf = crf

    def write(self, frame_bgr: np.ndarray) -> None:
        """Appends one ``[H, W, 3] uint8`` BGR frame (odd sizes are cropped by one pixel for yuv420p)."""
        h, w = frame_bgr.shape[:2]
        h2, w2 = h - h % 2, w - w % 2
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self._rate)
            self._stream.width, self._stream.height = w2, h2
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self._crf), "preset": "veryfast"}
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_bgr[:h2, :w2]), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flushes the encoder and renames the file into place."""
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Closes and deletes the partial file."""
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None
                self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
