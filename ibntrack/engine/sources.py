"""Acquisition: frames from a video file, an image folder, a MOTChallenge sequence, a camera or a stream.

This is the patent's *acquisition module*. Every source yields ``(frame_id, frame_bgr)`` with 1-based
frame ids and ``frame_bgr: np.ndarray[H, W, 3] uint8`` (OpenCV's BGR order), and checks that every frame
has the size of the first one.

Source specifications accepted by :func:`open_sources`:

* a video file (any container OpenCV's FFmpeg backend reads: ``.mp4 .avi .mkv .mov .webm …``);
* a folder of images (``.jpg .jpeg .png .bmp``), read in natural name order. When every file is named
  by its frame number (MOTChallenge ``000001.jpg``) the frame ids are those numbers, so a missing image
  leaves a gap (logged, and counted in :attr:`FrameSource.missing`) instead of renumbering every later
  frame; otherwise frames are numbered by position;
* a MOTChallenge sequence folder (``img1/`` + ``seqinfo.ini``) — its frame rate and scene keywords
  are read from ``seqinfo.ini``;
* a root of MOTChallenge sequences (``<root>/<seq>`` or ``<root>/<split>/<seq>``): one source each;
* a camera index (``"0"``) or a stream URL (``rtsp://``, ``http(s)://``, ``udp://``…).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ibntrack.data.motio import MOTFormatError, is_sequence_dir, read_seqinfo, split_list

__all__ = ["FrameSource", "SourceError", "open_sources", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DEFAULT_FPS = 30.0
_MAX_LISTED = 5

log = logging.getLogger(__name__)


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
        frame_ids: 1-based frame id of each image file (image sources): the number in the file name
            when every file is named by one, else the position.
        missing: frame ids absent from a numbered image sequence (gaps between its first and last file).
        decoded: frames decoded so far (set while iterating).
        truncated: a video whose container announced more frames than could be decoded (set at its end).
    """

    name: str
    spec: str
    kind: str
    frame_rate: float = _DEFAULT_FPS
    length: int | None = None
    scene: tuple[str, ...] = ()
    sequence_dir: Path | None = None
    _files: list[Path] = field(default_factory=list, repr=False)
    frame_ids: list[int] = field(default_factory=list, repr=False)
    missing: list[int] = field(default_factory=list, repr=False)
    decoded: int = 0
    truncated: bool = False

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        frames = self._iter_files() if self.kind == "images" else self._iter_capture()
        first_shape = None
        self.decoded = 0
        for frame_id, frame in frames:
            self.decoded += 1
            if first_shape is None:
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise SourceError(
                    f"{self.spec}: frame {frame_id} is {frame.shape[1]}x{frame.shape[0]} but the first frame "
                    f"is {first_shape[1]}x{first_shape[0]}; all frames of a source must have one size"
                )
            yield frame_id, frame

    def _iter_files(self) -> Iterator[tuple[int, np.ndarray]]:
        ids = self.frame_ids or list(range(1, len(self._files) + 1))
        for frame_id, path in zip(ids, self._files, strict=True):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise SourceError(f"{path}: cannot read the image (corrupt or not an image)")
            if frame.dtype != np.uint8:  # 16-bit PNG and the like: the network expects 8 bits
                raise SourceError(f"{path}: {frame.dtype} image; only 8-bit images are supported")
            yield frame_id, frame

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
            # containers announce their frame count; decoding far fewer means a truncated or corrupt file
            if self.kind == "video" and self.length and frame_id < self.length - 1:
                self.truncated = True
                log.warning(
                    "%s: decoding stopped after %d of the %d frames the container announces "
                    "(truncated or corrupt file); the results cover those %d frames",
                    self.spec,
                    frame_id,
                    self.length,
                    frame_id,
                )
        finally:
            cap.release()


def _read_seqinfo(seq_dir: Path) -> dict[str, str] | None:
    """``seqinfo.ini`` of ``seq_dir`` (lower-case keys, see :func:`ibntrack.data.motio.read_seqinfo`)."""
    ini = seq_dir / "seqinfo.ini"
    if not ini.is_file():
        return None
    try:
        return read_seqinfo(ini)
    except MOTFormatError as exc:
        raise SourceError(str(exc)) from None


def _number_frames(files: list[Path], where: Path) -> tuple[list[int], list[int]]:
    """Frame ids of image files and the gaps: by file name when every stem is a number, else by position.

    Raises:
        SourceError: two files carry the same frame number (``000001.jpg`` and ``000001.png``).
    """
    if not files or not all(p.stem.isdigit() for p in files):
        return list(range(1, len(files) + 1)), []
    ids = [int(p.stem) for p in files]
    seen: dict[int, Path] = {}
    for frame_id, p in zip(ids, files, strict=True):
        if frame_id in seen:
            raise SourceError(f"{where}: {seen[frame_id].name} and {p.name} both hold frame {frame_id}")
        seen[frame_id] = p
    if ids[0] < 1:
        raise SourceError(f"{where}: {files[0].name}: MOTChallenge frame numbers start at 1")
    present = set(ids)
    missing = [f for f in range(ids[0], ids[-1] + 1) if f not in present]
    if missing:
        shown = ", ".join(str(f) for f in missing[:_MAX_LISTED])
        shown += " ..." if len(missing) > _MAX_LISTED else ""
        log.warning(
            "%s: %d frame(s) missing between %s and %s (frames %s); frames keep the numbers of their "
            "file names and the missing ones are skipped",
            where,
            len(missing),
            files[0].name,
            files[-1].name,
            shown,
        )
    return ids, missing


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=_natural_key)


def _sequence_source(seq_dir: Path) -> FrameSource:
    info = _read_seqinfo(seq_dir)
    img_dir = seq_dir / (info.get("imdir", "img1") if info is not None else "img1")
    files = _image_files(img_dir) if img_dir.is_dir() else []
    if not files:
        raise SourceError(f"{img_dir}: the sequence has no image files ({', '.join(IMAGE_EXTENSIONS)})")
    fps = _DEFAULT_FPS
    scene: tuple[str, ...] = ()
    name = seq_dir.name
    if info is not None:
        try:
            fps = float(info.get("framerate") or _DEFAULT_FPS)
        except ValueError:
            raise SourceError(f"{seq_dir / 'seqinfo.ini'}: frameRate is not a number") from None
        if not 0 < fps < 1e4:
            raise SourceError(f"{seq_dir / 'seqinfo.ini'}: frameRate must be positive, got {fps}")
        name = _safe_name(info.get("name") or name, seq_dir / "seqinfo.ini")
        words = info.get("scenekeywords", "")
        scene = split_list(words)
    ids, missing = _number_frames(files, img_dir)
    return FrameSource(
        name, str(seq_dir), "images", fps, len(files), scene, seq_dir, files, frame_ids=ids, missing=missing
    )


def _safe_name(name: str, where: Path) -> str:
    """A sequence name usable as a result file name (``<name>.txt``)."""
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise SourceError(f"{where}: name={name!r} cannot be a file name (no '/', '\\' or '..')")
    return name


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
    files = _image_files(path)
    if is_sequence_dir(path) and not files:
        return [_sequence_source(path)]
    if files:
        info = _read_seqinfo(path)
        try:
            fps = float(info.get("framerate") or _DEFAULT_FPS) if info is not None else _DEFAULT_FPS
        except ValueError:
            raise SourceError(f"{path / 'seqinfo.ini'}: frameRate is not a number") from None
        ids, missing = _number_frames(files, path)
        src = FrameSource(path.name, str(path), "images", fps, len(files), (), None, files, ids, missing)
        return [src]
    seqs = sorted(p for p in path.iterdir() if p.is_dir() and is_sequence_dir(p))
    if not seqs:  # <root>/<split>/<seq>
        seqs = sorted(
            q for p in path.iterdir() if p.is_dir() for q in p.iterdir() if q.is_dir() and is_sequence_dir(q)
        )
    if not seqs:
        raise SourceError(
            f"{path}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)}) and no "
            "MOTChallenge sequences (<seq>/img1/)"
        )
    return [_sequence_source(s) for s in seqs]
