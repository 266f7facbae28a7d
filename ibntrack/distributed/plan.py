"""What a batch run will do: the sources of a root, a list file or a list, split into jobs (and chunks).

Sources are enumerated by :func:`ibntrack.engine.sources.open_sources`, the function ``ibntrack track``
uses, so names and order are the same. A root that holds one bad sequence is opened sequence by sequence,
so the bad one is reported by name and the others still run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ibntrack.data.motio import is_sequence_dir
from ibntrack.distributed.worker import Job
from ibntrack.engine.sources import FrameSource, SourceError, open_sources

__all__ = ["Planned", "plan_sources", "chunk_jobs", "read_source_list", "LIST_SUFFIXES"]

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class Planned:
    """One source of the run (``error`` set when it could not even be opened)."""

    name: str
    spec: str
    length: int | None = None
    error: str | None = None


def read_source_list(spec: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The source specifications of ``spec``.

    Args:
        spec: a list of sources; a text file (``.txt``, ``.lst``, ``.list``) with one source per line
            (blank lines and ``#`` comments skipped; relative paths are relative to the list file); or one
            source (a video, an image folder, a MOT sequence or a root of them).

    Raises:
        ValueError: an empty list.
    """
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            items = [ln for ln in lines if ln and not ln.startswith("#")]
            if not items:
                raise ValueError(f"{path}: the source list holds no sources")
            return [it if "://" in it or Path(it).is_absolute() else str(path.parent / it) for it in items]
        return [os.fspath(spec)]
    items = [os.fspath(s) for s in spec]
    if not items:
        raise ValueError("sources: the list is empty")
    return items


def _open_one(spec: str) -> list[Planned]:
    path = Path(spec)
    try:
        return [_planned(src) for src in open_sources(spec)]
    except SourceError as exc:
        message = str(exc)
    if not path.is_dir() or is_sequence_dir(path):
        return [Planned(path.name or spec, spec, error=message)]
    # a root with a bad sequence: open its sequences one by one (the order open_sources uses)
    seqs = sorted(p for p in path.iterdir() if p.is_dir() and is_sequence_dir(p))
    if not seqs:
        seqs = sorted(q for p in path.iterdir() if p.is_dir() for q in p.iterdir() if is_sequence_dir(q))
    if not seqs:
        return [Planned(path.name, spec, error=message)]
    out: list[Planned] = []
    for seq in seqs:
        try:
            out.extend(_planned(src) for src in open_sources(seq))
        except SourceError as err:
            out.append(Planned(seq.name, str(seq), error=str(err)))
    return out


def _planned(src: FrameSource) -> Planned:
    return Planned(src.name, src.spec, src.length if src.kind in ("video", "images") else None)


def plan_sources(specs: Iterable[str]) -> list[Planned]:
    """Every source of ``specs`` (see :func:`read_source_list`), in order.

    Raises:
        ValueError: two sources share a name (their result files would overwrite each other).
    """
    planned: list[Planned] = []
    seen: dict[str, str] = {}
    for spec in specs:
        for p in _open_one(spec):
            if p.name in seen:
                raise ValueError(
                    f"two sources are named {p.name!r} ({seen[p.name]} and {p.spec}); their result files "
                    "would overwrite each other: rename one or run them into different --out folders"
                )
            seen[p.name] = p.spec
            planned.append(p)
    return planned


def chunk_jobs(
    p: Planned, chunk_frames: int | None, overlap: int, max_frames: int | None = None
) -> list[Job]:
    """The jobs of one source: one whole-source job, or chunks of ``chunk_frames`` frames.

    Chunk ``c`` owns frame positions ``[c·N, (c+1)·N)`` and also reads the ``overlap`` frames before them
    (to warm its tracks up and to match identities with chunk ``c − 1``). A source of unknown length or
    of at most ``N`` frames is one job.

    Raises:
        ValueError: ``overlap`` not in ``[0, chunk_frames)``.
    """
    length = p.length if max_frames is None or p.length is None else min(p.length, max_frames)
    if not chunk_frames or length is None or length <= chunk_frames:
        return [Job(p.name, p.spec)]
    if not 0 <= overlap < chunk_frames:
        raise ValueError(
            f"--chunk-overlap {overlap} must be >= 0 and smaller than --chunk-frames {chunk_frames}"
        )
    n = math.ceil(length / chunk_frames)
    return [
        Job(
            p.name,
            p.spec,
            c,
            max(0, c * chunk_frames - overlap),
            c * chunk_frames,
            min(length, (c + 1) * chunk_frames),
        )
        for c in range(n)
    ]
