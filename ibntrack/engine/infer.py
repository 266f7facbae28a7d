"""Running trackers over sources: :func:`track` = :func:`~ibntrack.engine.sources.open_sources` × a
:class:`~ibntrack.engine.tracker.Tracker` per source × sinks (MOTChallenge result files, optional annotated
H.264 video and JSON lines, :mod:`ibntrack.engine.sinks`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ibntrack.engine.prefetch import Prefetcher
from ibntrack.engine.sinks import open_sinks, sink_paths
from ibntrack.engine.sources import FrameSource, open_sources
from ibntrack.engine.tracker import Tracker
from ibntrack.fileio import check_writable_dir, check_writable_file

__all__ = ["SequenceSummary", "Tracker", "track"]

log = logging.getLogger(__name__)


@dataclass
class SequenceSummary:
    """What :func:`track` did on one source."""

    name: str
    frames: int
    tracks: int
    result_file: Path | None
    video_file: Path | None
    mean_ms: dict[str, float] = field(default_factory=dict)
    fps: float = 0.0
    sparsity: int = 1
    refresh_fraction: float = 1.0
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM: the files hold the frames tracked until then
    missing_frames: int = 0  # frame numbers absent from a numbered image sequence (skipped)
    truncated: bool = False  # the video decoded fewer frames than its container announced


def track(
    source: str | Path,
    weights: str | Path | None = None,
    *,
    tracker: Tracker | None = None,
    scene: str | Sequence[str] | None = None,
    out_dir: str | Path = "runs/track",
    save_video: bool = False,
    save_json: bool = False,
    device: str = "cpu",
    sparsity: int | None = None,
    max_frames: int | None = None,
    progress: bool | None = None,
    **tracker_kwargs,
) -> list[SequenceSummary]:
    """Tracks every sequence of ``source`` and writes the results.

    Args:
        source: see :func:`ibntrack.engine.sources.open_sources`.
        weights: checkpoint path (ignored when ``tracker`` is given).
        tracker: a ready :class:`Tracker` (reset between sequences).
        scene: live scene keywords; when ``None`` each MOT sequence's ``sceneKeywords`` are used.
        out_dir: ``<out_dir>/<seq>.txt`` (MOTChallenge), ``<seq>.mp4``, ``<seq>.jsonl``.
        save_video: write an annotated H.264 mp4.
        save_json: write one JSON line per frame.
        max_frames: stop each source after this many frames.
        progress: tqdm progress bar (``None``: only on a terminal).

    Every output location is checked before the first frame is tracked. Ctrl-C (``KeyboardInterrupt``,
    which the CLI also raises on SIGTERM) does not throw the work away: the result file, video and JSON
    lines of the current source are finalised with the frames tracked so far, that source's summary says
    ``interrupted=True``, and the remaining sources are not started.

    Returns:
        One :class:`SequenceSummary` per source started.

    Raises:
        ibntrack.fileio.OutputError: ``out_dir`` or a result path cannot be written (before any work).
    """
    from tqdm import tqdm

    if tracker is None and weights is None:
        raise ValueError("track(): give weights=CHECKPOINT or tracker=Tracker(...)")
    sources: list[FrameSource] = open_sources(source)
    out = check_writable_dir(out_dir, "out_dir (--out)")
    for src in sources:
        for path in sink_paths(out, src.name, save_video, save_json):
            check_writable_file(path, f"result of {src.name} (--out)")
    summaries = []
    for src in sources:
        live_scene = scene if scene else (src.scene or None)
        if tracker is not None:
            trk = tracker
            trk.reset(frame_rate=src.frame_rate)
        else:  # one tracker per source: each source's scene may give another sparsity factor
            assert weights is not None  # checked above
            trk = Tracker.from_checkpoint(
                weights,
                scene=live_scene,
                device=device,
                sparsity=sparsity,
                frame_rate=src.frame_rate,
                **tracker_kwargs,
            )
        mot, sinks = open_sinks(out, src.name, src.frame_rate, trk.class_names, save_video, save_json)
        total = src.length if max_frames is None else min(src.length or max_frames, max_frames)
        bar = tqdm(
            total=total, desc=src.name, unit="frame", disable=None if progress is None else not progress
        )
        t_start = time.perf_counter()
        n = 0
        interrupted = False
        reader = Prefetcher(src, depth=2)  # the next frames decode while the network runs on this one
        try:
            for frame_id, frame in reader:
                if max_frames is not None and n >= max_frames:
                    break
                tracks = trk.update(frame)
                n += 1
                for sink in sinks:
                    sink.write(frame_id, frame, tracks)
                bar.update(1)
                if n % 10 == 0:
                    bar.set_postfix(fps=f"{n / (time.perf_counter() - t_start):.1f}", tracks=len(mot.ids))
        except KeyboardInterrupt:  # keep what was tracked: finalised below like a finished source
            interrupted = True
            log.warning("%s: interrupted after %d frames; writing the results so far", src.name, n)
        except BaseException:
            for sink in sinks:  # no partial result, video or JSON file is left behind
                sink.abort()
            raise
        finally:
            reader.close()
            bar.close()
        elapsed = time.perf_counter() - t_start
        for sink in sinks:
            sink.close()
        stats = trk.stream.stats()
        summaries.append(
            SequenceSummary(
                name=src.name,
                frames=n,
                tracks=len(mot.ids),
                result_file=mot.path,
                video_file=(out / f"{src.name}.mp4") if save_video else None,
                mean_ms=trk.times.mean_ms(),
                fps=n / elapsed if elapsed > 0 else 0.0,
                sparsity=trk.sparsity,
                refresh_fraction=stats["refreshes"] / max(stats["frames"], 1),
                interrupted=interrupted,
                missing_frames=len(src.missing),
                truncated=src.truncated,
            )
        )
        log.info("%s: %d frames, %d tracks, %.1f frames/s", src.name, n, len(mot.ids), summaries[-1].fps)
        if interrupted:
            break
    return summaries
