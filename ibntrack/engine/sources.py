"""Acquisition: frames from a video file, an image folder, a MOTChallenge sequence, a camera or a stream.

This is the patent's *acquisition module*. Every source yields ``(frame_id, frame_bgr)`` with 1-based
frame ids and ``frame_bgr: np.ndarray[H, W, 3] uint8`` (OpenCV's BGR order), and checks that every frame
has the size of the first one.

Source specifications accepted by :func:`open_sources`:

* a video file (any container OpenCV's FFmpeg backend reads: ``.mp4 .avi .mkv .mov .webm …``);
* a folder of images (``.jpg .jpeg .png .bmp``), read in natural name order;
* a MOTChallenge sequence folder (``img1/`` + ``seqinfo.ini``) — its frame rate and scene keywords
  are read from ``seqinfo.ini``;
* a root of MOTChallenge sequences (``<root>/<seq>`` or ``<root>/<split>/<seq>``): one source each;
* a camera index (``"0"``) or a stream URL (``rtsp://``, ``http(s)://``, ``udp://``…).
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FrameSource", "SourceError", "open_sources", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DEFAULT_FPS = 30.0


class SourceError(ValueError):
    """A source cannot be opened or read; the message names the source and the problem."""


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


@dataclass
class FrameSource:
    """One stream of frames.

    Attributes:
        name: sequence name used for result files (``<name>.txt``).
        spec: what the user gave (path, index or URL).
        kind: ``"video" | "images" | "camera" | "stream"``.
        frame_rate: frames per second (from the container or ``seqinfo.ini``; 30 when unknown).
        length: number of frames when known, else ``None``.
        scene: scene keywords from ``seqinfo.ini`` (``sceneKeywords``), empty when unknown.
        sequence_dir: the MOTChallenge sequence folder when the source is one (for evaluation).
    """

    name: str
    spec: str
    kind: str
    frame_rate: float = _DEFAULT_FPS
    length: int | None = None
    scene: tuple[str, ...] = ()
    sequence_dir: Path | None = None
    _files: list[Path] = field(default_factory=list, repr=False)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        frames = self._iter_files() if self.kind == "images" else self._iter_capture()
        first_shape = None
        for frame_id, frame in frames:
            if first_shape is None:
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise SourceError(
                    f"{self.spec}: frame {frame_id} is {frame.shape[1]}x{frame.shape[0]} but the first frame "
                    f"is {first_shape[1]}x{first_shape[0]}; all frames of a source must have one size"
                )
            yield frame_id, frame

    def _iter_files(self) -> Iterator[tuple[int, np.ndarray]]:
        for i, path in enumerate(self._files, start=1):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise SourceError(f"{path}: cannot read the image (corrupt or not an image)")
            yield i, frame

    def _iter_capture(self) -> Iterator[tuple[int, np.ndarray]]:
        target = int(self.spec) if self.kind == "camera" else self.spec
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            raise SourceError(
                f"{self.spec}: cannot open the {self.kind} (unreadable, missing codec or not a video)"
            )
        try:
            frame_id = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frame_id += 1
                yield frame_id, frame
            if frame_id == 0:
                raise SourceError(f"{self.spec}: the {self.kind} opened but no frame could be decoded")
        finally:
            cap.release()


def _read_seqinfo(seq_dir: Path) -> configparser.SectionProxy | None:
    ini = seq_dir / "seqinfo.ini"
    if not ini.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
    except configparser.Error as exc:
        raise SourceError(f"{ini}: not a valid seqinfo.ini ({exc})") from exc
    return parser["Sequence"] if parser.has_section("Sequence") else None


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=_natural_key)


def _is_sequence(path: Path) -> bool:
    return (path / "img1").is_dir()


def _sequence_source(seq_dir: Path) -> FrameSource:
    info = _read_seqinfo(seq_dir)
    img_dir = seq_dir / (info.get("imDir", "img1") if info is not None else "img1")
    files = _image_files(img_dir) if img_dir.is_dir() else []
    if not files:
        raise SourceError(f"{img_dir}: the sequence has no image files ({', '.join(IMAGE_EXTENSIONS)})")
    fps = _DEFAULT_FPS
    scene: tuple[str, ...] = ()
    name = seq_dir.name
    if info is not None:
        try:
            fps = float(info.get("frameRate", _DEFAULT_FPS))
        except ValueError as exc:
            raise SourceError(f"{seq_dir / 'seqinfo.ini'}: frameRate is not a number") from exc
        name = info.get("name", name)
        words = info.get("sceneKeywords", "")
        scene = tuple(w.strip() for w in words.split(",") if w.strip())
    return FrameSource(name, str(seq_dir), "images", fps, len(files), scene, seq_dir, files)


def _video_source(path: Path) -> FrameSource:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"{path}: cannot open the video (unreadable, missing codec or not a video)")
    fps = cap.get(cv2.CAP_PROP_FPS) or _DEFAULT_FPS
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    fps = fps if 0 < fps < 1000 else _DEFAULT_FPS
    return FrameSource(path.stem, str(path), "video", float(fps), count if count > 0 else None)


def open_sources(spec: str | Path) -> list[FrameSource]:
    """Open what the user named as one or more frame sources.

    Args:
        spec: a path (video, image folder, MOT sequence, root of MOT sequences), a camera index or a URL.

    Returns:
        The sources, in name order for a root of sequences.

    Raises:
        SourceError: the path does not exist, a folder holds no images or sequences, a video cannot
            be opened. The message names the path and the problem.
    """
    text = str(spec)
    if text.isdigit():
        return [FrameSource(f"camera{text}", text, "camera")]
    if _URL.match(text):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.split("://", 1)[1]).strip("_")[:64] or "stream"
        return [FrameSource(name, text, "stream")]
    path = Path(text)
    if not path.exists():
        raise SourceError(
            f"{path}: no such file or folder (expected a video, an image folder, a MOT sequence, "
            "a root of MOT sequences, a camera index or a stream URL)"
        )
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return [FrameSource(path.stem, str(path), "images", _DEFAULT_FPS, 1, (), None, [path])]
        return [_video_source(path)]
    if _is_sequence(path):
        return [_sequence_source(path)]
    files = _image_files(path)
    if files:
        info = _read_seqinfo(path)
        fps = float(info.get("frameRate", _DEFAULT_FPS)) if info is not None else _DEFAULT_FPS
        return [FrameSource(path.name, str(path), "images", fps, len(files), (), None, files)]
    seqs = sorted(p for p in path.iterdir() if p.is_dir() and _is_sequence(p))
    if not seqs:  # <root>/<split>/<seq>
        seqs = sorted(
            q for p in path.iterdir() if p.is_dir() for q in p.iterdir() if q.is_dir() and _is_sequence(q)
        )
    if not seqs:
        raise SourceError(
            f"{path}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)}) and no "
            "MOTChallenge sequences (<seq>/img1/)"
        )
    return [_sequence_source(s) for s in seqs]
