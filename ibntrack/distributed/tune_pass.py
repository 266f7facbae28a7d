"""``ibntrack tune``'s network pass (once per labelled sequence) spread over the workers of an engine."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from ibntrack.distributed.engines import LocalEngine, RayEngine, check_engine_args
from ibntrack.distributed.worker import TrackOptions, pack_weights

__all__ = ["cache_sequences_many", "cache_function"]


def cache_function(args: Any) -> Any:
    """``ibntrack tune``'s network pass for its parsed flags: :func:`ibntrack.tune.cache_sequences`, or
    :func:`cache_sequences_many` on Ray with ``--engine ray`` (same arguments, same result)."""
    from functools import partial

    from ibntrack.tune import cache_sequences

    check_engine_args(args.engine, args.workers, args.address, args.num_gpus)
    if getattr(args, "engine", "local") != "ray":
        return cache_sequences
    return partial(
        cache_sequences_many,
        engine="ray",
        workers=args.workers,
        address=args.address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
    )


def cache_sequences_many(
    source: str | os.PathLike,
    weights: str | os.PathLike,
    *,
    scene: str | Sequence[str] | None = None,
    sparsity: int | None = None,
    device: str = "cpu",
    max_frames: int | None = None,
    backend: str = "torch",
    progress: bool | None = None,
    engine: str = "ray",
    workers: int | None = None,
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    **tracker_kwargs: Any,
) -> list[Any]:
    """As :func:`ibntrack.tune.cache_sequences`, one sequence per worker call: the same
    :class:`~ibntrack.tune.CachedSequence` list, in the same order.

    Raises:
        ValueError: a sequence without ground truth (before any network runs); a worker call that failed
            (names the sequence). ImportError: ``engine="ray"`` without Ray.
    """
    from tqdm import tqdm

    from ibntrack.tune import CACHE_THRESH, _labelled_sequences

    seqs = [str(s) for s in _labelled_sequences(source)]
    live_scene = scene if scene is None or isinstance(scene, str) else ",".join(scene)
    options = TrackOptions(
        scene=live_scene,
        sparsity=sparsity,
        device=device,
        max_frames=max_frames,
        tracker_kwargs={"backend": backend, **tracker_kwargs},  # precision, fold ... as track
    )
    blob = pack_weights(weights)
    with tempfile.TemporaryDirectory(prefix="ibntrack-tune-") as out:
        if engine == "ray":
            eng: Any = RayEngine(blob, options, out, workers, address, num_cpus, num_gpus)
        else:
            eng = LocalEngine(blob, options, out)
        results: list[Any] = [None] * len(seqs)
        bar = tqdm(
            total=len(seqs),
            desc="network",
            unit="sequence",
            disable=None if progress is None else not progress,
        )
        try:
            for i, cached in eng.map([("detect_sequence", (s, CACHE_THRESH)) for s in seqs]):
                if isinstance(cached, dict):  # a failed call (the worker died, or an error)
                    raise ValueError(f"tune: the network pass failed on {seqs[i]}: {cached.get('error')}")
                results[i] = cached
                bar.update(1)
        finally:
            bar.close()
            eng.close()
    return results
