"""One worker of a batch run: holds the model once, tracks one source (or one chunk of one) per call.

:class:`SourceWorker` is a plain Python class. The local engine calls it in-process; the Ray engine wraps
it in ``ray.remote`` (one actor per worker), so both engines run the same code per source, and that code
is :func:`ibntrack.engine.infer.track` itself — results are byte-identical to ``ibntrack track``.

The weights travel as bytes (:func:`pack_weights`: the checkpoint, or an ONNX export with its cached
graph), put once into Ray's object store by the driver; each worker writes them to its own temporary
folder once and builds its tracker from there (:func:`build_tracker`, the one place trackers are made).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ibntrack.distributed.store import OutputStore, done_marker
from ibntrack.engine.infer import Tracker, track
from ibntrack.engine.sinks import MotSink
from ibntrack.engine.sources import SourceError, open_sources
from ibntrack.scene import scene_sparsity

__all__ = ["Job", "TrackOptions", "SourceWorker", "build_tracker", "pack_weights"]

log = logging.getLogger(__name__)

_DIR_PREFIX = "ibntrack-worker-"  # + pid: the weights and staging folder of one worker process
# errors that mean "this source is bad input" (reported by name; the other sources go on)
_INPUT_ERRORS = (SourceError, ValueError, OSError, EOFError)


@dataclass(frozen=True)
class TrackOptions:
    """What ``ibntrack track`` does to each source (everything but the source and the output folder).

    Attributes:
        scene: live scene keywords for every source (``None``: each MOT sequence's ``sceneKeywords``).
        sparsity: force the IN sparsity factor.
        device: ``cpu`` or ``cuda[:N]``.
        max_frames: stop each source after this many frames.
        save_video, save_json: also write ``<name>.mp4`` / ``<name>.jsonl``.
        interpolate, interpolate_gap: gap filling of the result file (``none | linear | gsi``).
        threads: torch threads per worker (``None``: the worker's CPU share, at least 1).
        tracker_kwargs: keyword arguments of :meth:`Tracker.from_checkpoint` (``tracker_overrides``,
            ``fold``, ``backend``, ``precision``, ``adapt_bn``, ``drift_threshold``, ``cmc`` ...).
    """

    scene: str | None = None
    sparsity: int | None = None
    device: str = "cpu"
    max_frames: int | None = None
    save_video: bool = False
    save_json: bool = False
    interpolate: str = "none"
    interpolate_gap: int = 20
    threads: int | None = None
    tracker_kwargs: dict[str, Any] = field(default_factory=dict)

    def suffixes(self) -> list[str]:
        """The result files of one source, as suffixes of its name (``.txt`` first)."""
        return [".txt"] + [".mp4"] * self.save_video + [".jsonl"] * self.save_json


@dataclass(frozen=True)
class Job:
    """One unit of work: a whole source, or frames ``[read_start, end)`` (0-based positions) of one.

    ``own_start`` is the first position whose rows the chunk contributes (positions before it are the
    overlap with the previous chunk, tracked to warm up and to match identities); ``chunk`` is ``None``
    for a whole source.
    """

    name: str
    spec: str
    chunk: int | None = None
    read_start: int = 0
    own_start: int = 0
    end: int | None = None


def pack_weights(path: str | os.PathLike) -> dict[str, bytes]:
    """The bytes of a weights file and of the files it needs beside it (an ONNX export's cached graph).

    Returns:
        ``{file name: bytes}``, the given file first.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--weights {path}: no such file")
    files = {path.name: path.read_bytes()}
    if path.suffix == ".onnx":
        from ibntrack.runtime.ort import cached_graph_path

        cached = cached_graph_path(path)
        if cached.is_file():
            files[cached.name] = cached.read_bytes()
    return files


def build_tracker(weights: str | os.PathLike, options: TrackOptions, **extra: Any) -> Tracker:
    """THE place a batch run builds a tracker (one per worker, reused for every source)."""
    return Tracker.from_checkpoint(
        weights, device=options.device, sparsity=options.sparsity, **options.tracker_kwargs, **extra
    )


def _remove_dead_workers_dirs() -> None:
    """Removes the temporary folders of worker processes that died without cleaning up (SIGKILL)."""
    for d in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        pid = d.name[len(_DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:  # another user's live process
            pass


def _sparsity_for(trk: Tracker, options: TrackOptions, live_scene: Any) -> int:
    """The sparsity factor :meth:`Tracker.from_checkpoint` would choose for a source with ``live_scene``."""
    if options.sparsity is not None:
        return options.sparsity
    if live_scene and trk.card is not None:
        return scene_sparsity(live_scene, trk.card.train_scene, trk.card.source or "model") or 1
    return 1


class SourceWorker:
    """Holds one tracker (one model in memory) and tracks sources into an output store.

    Args:
        weights: :func:`pack_weights`'s ``{file name: bytes}`` (the first entry is the weights file).
        options: what to do to each source.
        out: output folder, a local path or an fsspec URL.
        fault: test hook, ``(source name, marker path)``: the first time that source starts (the marker
            file does not exist yet) the worker creates the marker and kills its own process (SIGKILL),
            imitating a machine lost mid-task; the retried task then finds the marker and runs normally.
    """

    def __init__(
        self,
        weights: dict[str, bytes],
        options: TrackOptions,
        out: str,
        fault: tuple[str, str] | None = None,
    ) -> None:
        import torch

        self.options = options
        self.store = OutputStore(out)
        self.fault = fault
        if options.threads:
            torch.set_num_threads(options.threads)
        _remove_dead_workers_dirs()
        self._dir = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
        for name, data in weights.items():
            (self._dir / name).write_bytes(data)
        self.weights_path = self._dir / next(iter(weights))
        self.tracker = build_tracker(self.weights_path, options)
        self._detector: Tracker | None = None

    def pid(self) -> int:
        """The worker's process id."""
        return os.getpid()

    def close(self) -> None:
        """Removes the worker's temporary folder."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def _maybe_fail(self, name: str) -> None:
        if self.fault is None or self.fault[0] != name or os.path.exists(self.fault[1]):
            return
        Path(self.fault[1]).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)

    # ---------------------------------------------------------------------------------------- sources
    def run(self, job: Job, fingerprint: str) -> dict[str, Any]:
        """Tracks one whole source and publishes its files, then its done-marker.

        Returns:
            ``{"name", "status": "done" | "failed", "error", "frames", "tracks", "seconds", "cpu_seconds",
            "pid"}`` (``cpu_seconds``: CPU time of the worker process during the call); bad input is a
            ``failed`` outcome (the error names the source), never an exception.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        self._maybe_fail(job.name)
        outcome: dict[str, Any] = {"name": job.name, "status": "failed", "error": None, "pid": os.getpid()}
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=self._dir))
        try:
            (src,) = open_sources(job.spec)
            live = self.options.scene if self.options.scene else (src.scene or None)
            self.tracker.backend.set_sparsity(_sparsity_for(self.tracker, self.options, live))
            (summary,) = track(
                job.spec,
                tracker=self.tracker,
                out_dir=stage,
                save_video=self.options.save_video,
                save_json=self.options.save_json,
                max_frames=self.options.max_frames,
                progress=False,
            )
            if summary.interrupted:
                raise InterruptedError(f"{job.name}: interrupted after {summary.frames} frames")
            self._interpolate(stage / f"{src.name}.txt")
            files = [stage / f"{src.name}{s}" for s in self.options.suffixes()]
            record = {"frames": summary.frames, "tracks": summary.tracks, "spec": job.spec}
            self.store.publish(job.name, files, done_marker(job.name, fingerprint, files, record))
            outcome.update(status="done", frames=summary.frames, tracks=summary.tracks)
        except (*_INPUT_ERRORS, InterruptedError) as exc:
            outcome["error"] = f"{job.name} ({job.spec}): {exc}"
            log.debug("%s failed:\n%s", job.name, traceback.format_exc())
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        outcome["seconds"] = time.perf_counter() - t0
        outcome["cpu_seconds"] = time.process_time() - c0
        return outcome

    def _interpolate(self, result: Path) -> None:
        if self.options.interpolate != "none" and result.is_file():
            from ibntrack.tracking.interpolate import interpolate_file

            interpolate_file(result, method=self.options.interpolate, max_gap=self.options.interpolate_gap)

    # ----------------------------------------------------------------------------------------- chunks
    def run_chunk(self, job: Job) -> dict[str, Any]:
        """Tracks frames ``[job.read_start, job.end)`` of one source as a stream of its own.

        Returns:
            ``{"name", "chunk", "status", "error", "rows", "own_from", "pid", "seconds"}``: ``rows`` are
            ``(frame, id, x, y, w, h, score, class)`` as :class:`~ibntrack.engine.sinks.MotSink` makes
            them (ids local to the chunk), ``own_from`` the frame id of position ``job.own_start``.
        """
        t0 = time.perf_counter()
        self._maybe_fail(f"{job.name}#{job.chunk}")
        outcome: dict[str, Any] = {"name": job.name, "chunk": job.chunk, "status": "failed", "error": None}
        outcome["pid"] = os.getpid()
        try:
            (src,) = open_sources(job.spec)
            live = self.options.scene if self.options.scene else (src.scene or None)
            trk = self.tracker
            trk.backend.set_sparsity(_sparsity_for(trk, self.options, live))
            trk.reset(frame_rate=src.frame_rate)
            if src.kind == "images":  # read only the chunk's images (videos decode from the start)
                ids = src.frame_ids or list(range(1, len(src._files) + 1))
                src = replace(
                    src, _files=src._files[job.read_start : job.end], frame_ids=ids[job.read_start : job.end]
                )
                offset = job.read_start
            else:
                offset = 0
            sink = MotSink(Path(job.name), trk.class_names)
            own_from, owned = None, 0
            for pos, (frame_id, frame) in enumerate(src, start=offset):
                if job.end is not None and pos >= job.end:
                    break
                if pos < job.read_start:
                    continue
                if pos == job.own_start:
                    own_from = frame_id
                owned += pos >= job.own_start
                sink.write(frame_id, frame, trk.update(frame))
            outcome.update(status="done", rows=sink.rows, own_from=own_from, frames=owned)
        except _INPUT_ERRORS as exc:
            outcome["error"] = f"{job.name} ({job.spec}) chunk {job.chunk}: {exc}"
        outcome["seconds"] = time.perf_counter() - t0
        return outcome

    # ------------------------------------------------------------------------------------------- tune
    def detect_sequence(self, seq_dir: str, conf_thresh: float) -> Any:
        """``ibntrack tune``'s network pass over one labelled sequence: a
        :class:`~ibntrack.tune.CachedSequence` (detections from ``conf_thresh`` up)."""
        from ibntrack.data.mot import MOT_CLASS_IDS
        from ibntrack.tune import CachedSequence

        if self._detector is None:  # a second tracker on the same weights file, with a lower threshold
            self._detector = build_tracker(self.weights_path, self.options, conf_thresh=conf_thresh)
        trk = self._detector
        (src,) = open_sources(seq_dir)
        live = self.options.scene if self.options.scene else (src.scene or None)
        trk.backend.set_sparsity(_sparsity_for(trk, self.options, live))
        trk.reset(frame_rate=src.frame_rate)
        frames: list[tuple[int, Any]] = []
        for frame_id, frame in src:
            if self.options.max_frames is not None and len(frames) >= self.options.max_frames:
                break
            frames.append((int(frame_id), trk.detect(frame)))
        names = trk.class_names
        mot_class = [MOT_CLASS_IDS.get(n.lower(), -1) for n in names] if len(names) > 1 else []
        return CachedSequence(src.name, Path(seq_dir), src.frame_rate, frames, mot_class, trk.tracker_config)
