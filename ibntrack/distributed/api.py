"""``track_many``: track every source of an archive on one machine or a Ray cluster, resumably."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibntrack.distributed.engines import LocalEngine, RayEngine, check_engine_args
from ibntrack.distributed.plan import Planned, chunk_jobs, plan_sources, read_source_list
from ibntrack.distributed.stitch import stitch_chunks
from ibntrack.distributed.store import OutputStore, done_marker, fingerprint
from ibntrack.distributed.worker import TrackOptions, pack_weights

__all__ = ["track_many", "RunReport", "SourceOutcome", "ENGINES"]

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@dataclass
class SourceOutcome:
    """What happened to one source: ``status`` is ``done``, ``skipped`` (finished by an earlier run) or
    ``failed`` (``error`` names the source and says why)."""

    name: str
    status: str
    error: str | None = None
    frames: int = 0
    tracks: int = 0
    seconds: float = 0.0
    chunks: int = 1


@dataclass
class RunReport:
    """The outcome of :func:`track_many`, one entry per source, in source order."""

    sources: list[SourceOutcome] = field(default_factory=list)
    engine: str = "local"
    workers: int = 1
    seconds: float = 0.0

    def _with(self, status: str) -> list[SourceOutcome]:
        return [s for s in self.sources if s.status == status]

    @property
    def done(self) -> list[SourceOutcome]:
        return self._with("done")

    @property
    def skipped(self) -> list[SourceOutcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[SourceOutcome]:
        return self._with("failed")

    def summary(self) -> str:
        """``done N, skipped N, failed N`` and one line per failed source."""
        counts = f"{len(self.done)} done, {len(self.skipped)} skipped (already finished), "
        counts += f"{len(self.failed)} failed - {len(self.sources)} source(s), engine {self.engine}, "
        lines = [counts + f"{self.workers} worker(s), {self.seconds:.1f} s"]
        lines += [f"  failed: {s.error}" for s in self.failed]
        return "\n".join(lines)


def _make_engine(engine: str, weights: dict[str, bytes], options: TrackOptions, out: str, **kw: Any) -> Any:
    if engine == "ray":
        return RayEngine(weights, options, out, **kw)
    return LocalEngine(weights, options, out)


def track_many(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    weights: str | os.PathLike,
    *,
    out_dir: str | os.PathLike = "runs/track",
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    resume: bool = True,
    chunk_frames: int | None = None,
    chunk_overlap: int = 0,
    progress: bool | None = None,
    scene: str | None = None,
    sparsity: int | None = None,
    device: str = "cpu",
    max_frames: int | None = None,
    save_video: bool = False,
    save_json: bool = False,
    interpolate: str = "none",
    interpolate_gap: int = 20,
    threads: int | None = None,
    fault: tuple[str, str] | None = None,
    **tracker_kwargs: Any,
) -> RunReport:
    """Tracks every source and writes ``<out_dir>/<name>.txt`` (and ``.mp4`` / ``.jsonl``) per source.

    Each source is tracked by :func:`ibntrack.engine.infer.track`, as ``ibntrack track`` does, so the
    result files are byte-identical to a single-process run. A source is published atomically (files,
    then ``<out_dir>/_done/<name>.json``); with ``resume`` the sources finished by an earlier run with the
    same weights and options are skipped (:mod:`ibntrack.distributed.store`).

    Args:
        sources: a root of sequences, one video / image folder / MOT sequence, a ``.txt`` list of them
            (one per line), or a Python list (:func:`~ibntrack.distributed.plan.read_source_list`).
        weights: checkpoint (``.pt``) or ONNX export; read once, sent to the workers as bytes.
        out_dir: a local folder or an fsspec URL (``s3://…``; the fsspec backend must be installed on
            every machine).
        engine: ``"local"`` (this process) or ``"ray"`` (one actor per worker; needs ``ibntrack[ray]``).
        workers, address, num_cpus, num_gpus: Ray workers and the resources of each
            (:class:`~ibntrack.distributed.engines.RayEngine`).
        resume: skip sources already finished (``False``: track everything again).
        chunk_frames, chunk_overlap: split sources longer than ``chunk_frames`` frames into chunks tracked
            in parallel, reading ``chunk_overlap`` frames before each, identities joined by
            :func:`~ibntrack.distributed.stitch.stitch_chunks` (not with ``save_video``/``save_json``).
        progress: a tqdm bar over sources (``None``: only on a terminal).
        fault: test hook (:class:`~ibntrack.distributed.worker.SourceWorker`).
        scene, sparsity, device, max_frames, save_video, save_json, interpolate, interpolate_gap,
        threads, tracker_kwargs: as ``ibntrack track`` (:class:`~ibntrack.distributed.worker.TrackOptions`).

    Returns:
        A :class:`RunReport`: per source ``done``, ``skipped`` or ``failed`` (bad input does not stop the
        other sources).

    Raises:
        ValueError: a bad engine or option, two sources with one name. ImportError: ``engine="ray"``
        without Ray (the message says how to install it). OutputError: ``out_dir`` cannot be written.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}")
    check_engine_args(engine, workers, address, num_gpus)
    if chunk_frames and (save_video or save_json):
        raise ValueError("--chunk-frames writes result files only; drop --save-video/--save-json to chunk")
    options = TrackOptions(
        scene,
        sparsity,
        device,
        max_frames,
        save_video,
        save_json,
        interpolate,
        interpolate_gap,
        threads,
        dict(tracker_kwargs),
    )
    from ibntrack.runtime import read_card

    read_card(weights, tracker_kwargs.get("backend", "torch"))  # unreadable weights: named, before any worker
    blob = pack_weights(weights)
    fp = fingerprint(blob, {**options.__dict__, "threads": None, "chunk": [chunk_frames, chunk_overlap]})
    store = OutputStore(out_dir)
    store.prepare()
    planned = plan_sources(read_source_list(sources))
    outcomes = {p.name: SourceOutcome(p.name, "failed", p.error) for p in planned if p.error}
    todo: list[Planned] = []
    for p in planned:
        if p.error:
            continue
        if resume and store.finished(p.name, fp):
            outcomes[p.name] = SourceOutcome(p.name, "skipped")
        else:
            todo.append(p)
    jobs = [j for p in todo for j in chunk_jobs(p, chunk_frames, chunk_overlap, max_frames)]
    report = RunReport(engine=engine, workers=0)
    if jobs:
        eng = _make_engine(
            engine,
            blob,
            options,
            store.url,
            workers=workers,
            address=address,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            fault=fault,
        )
        report.workers = eng.workers
        bar = tqdm(
            total=len(todo), unit="source", desc="track", disable=None if progress is None else not progress
        )
        try:
            _run_jobs(eng, jobs, todo, store, fp, options, outcomes, bar)
        finally:
            bar.close()
            eng.close()
    report.sources = [outcomes[p.name] for p in planned]
    report.seconds = time.perf_counter() - t0
    return report


def _run_jobs(eng, jobs, todo, store, fp, options, outcomes, bar) -> None:
    """Runs the jobs on ``eng``; fills ``outcomes`` as sources finish (chunked ones once stitched)."""
    calls = [("run", (j, fp)) if j.chunk is None else ("run_chunk", (j,)) for j in jobs]
    n_chunks: dict[str, int] = defaultdict(int)
    for j in jobs:
        n_chunks[j.name] += j.chunk is not None
    parts: dict[str, dict[int, dict]] = defaultdict(dict)
    for _, out in eng.map(calls):
        name = out["name"]
        if out.get("chunk") is None:
            outcomes[name] = SourceOutcome(
                name,
                out["status"],
                out.get("error"),
                out.get("frames", 0),
                out.get("tracks", 0),
                out.get("seconds", 0.0),
            )
        else:
            parts[name][out["chunk"]] = out
            if len(parts[name]) < n_chunks[name]:
                continue
            outcomes[name] = _finish_chunked(name, parts.pop(name), store, fp, options, todo)
        _log_outcome(outcomes[name])
        bar.update(1)


def _log_outcome(o: SourceOutcome) -> None:
    if o.status == "failed":
        log.error("failed: %s", o.error)
    else:
        log.info("%s: %d frames, %d tracks, %.1f s", o.name, o.frames, o.tracks, o.seconds)


def _finish_chunked(
    name: str,
    parts: dict[int, dict],
    store: OutputStore,
    fp: str,
    options: TrackOptions,
    todo: Sequence[Planned],
) -> SourceOutcome:
    """Stitches the chunks of one source and publishes the result like a whole source."""
    from ibntrack.data.motio import write_results

    ordered = [parts[c] for c in sorted(parts)]
    errors = [p["error"] for p in ordered if p["status"] != "done"]
    seconds = sum(p.get("seconds", 0.0) for p in ordered)
    if errors:
        return SourceOutcome(name, "failed", errors[0], seconds=seconds, chunks=len(ordered))
    rows = stitch_chunks([(p["own_from"], p["rows"]) for p in ordered])
    stage = Path(tempfile.mkdtemp(prefix="ibntrack-stitch-"))
    try:
        result = write_results(stage / f"{name}.txt", rows)
        if options.interpolate != "none":
            from ibntrack.tracking.interpolate import interpolate_file

            interpolate_file(result, method=options.interpolate, max_gap=options.interpolate_gap)
        frames = sum(p.get("frames", 0) for p in ordered)
        tracks = len({int(r[1]) for r in rows})
        spec = next(p.spec for p in todo if p.name == name)
        record = {"frames": frames, "tracks": tracks, "spec": spec, "chunks": len(ordered)}
        store.publish(name, [result], done_marker(name, fp, [result], record))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return SourceOutcome(name, "done", None, frames, tracks, seconds, len(ordered))
