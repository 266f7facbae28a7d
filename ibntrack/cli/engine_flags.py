"""The engine flag group (``--engine local|ray``, ``--address``, ``--workers`` …) of ``track``, ``eval`` and
``tune``, and the runs they start (:func:`ibntrack.distributed.track_many`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ibntrack.cliargs import non_negative_int, positive_int

__all__ = ["add_engine_flags", "engine_requested", "run_track_engine", "track_for_eval"]


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def add_engine_flags(p: argparse.ArgumentParser, chunking: bool = True) -> None:
    """Adds the ``engine`` flag group to ``p`` (``chunking``: also ``--chunk-frames/--chunk-overlap``
    and ``--overwrite``, for commands that write result files)."""
    g = p.add_argument_group(
        "engine",
        "where the sources are processed. --engine ray runs one Ray actor per worker (each holds the model "
        "once), one task per source, on this machine or a cluster (--address); needs `pip install "
        "'ibntrack[ray]'`. With it the source may also be a .txt list of sources (one per line), --out an "
        "fsspec URL (s3://...), and sources finished by an earlier run are skipped (docs/DISTRIBUTED.md)",
    )
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local (default): this process, as before; ray: Ray actors",
    )
    g.add_argument(
        "--address",
        help="Ray cluster to join: auto (a cluster started with `ray start --head` on this machine), "
        "HOST:6379, or ray://HOST:10001 (default: start a local cluster)",
    )
    g.add_argument(
        "--workers", type=positive_int, help="Ray workers (default: the cluster's CPUs / --num-cpus)"
    )
    g.add_argument(
        "--num-cpus", type=_non_negative_float, default=1.0, help="CPUs per Ray worker (default 1)"
    )
    g.add_argument(
        "--num-gpus", type=_non_negative_float, default=0.0, help="GPUs per Ray worker (default 0)"
    )
    if not chunking:
        return
    g.add_argument(
        "--chunk-frames",
        type=positive_int,
        metavar="N",
        help="split sources longer than N frames into chunks tracked in parallel, identities joined in "
        "the overlap frames (IoU votes + Hungarian; result files only)",
    )
    g.add_argument(
        "--chunk-overlap",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="frames each chunk reads before its own, to warm up and match identities (default 0)",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="track every source again, even those a previous run finished (default: skip them)",
    )


def engine_requested(args: argparse.Namespace) -> bool:
    """Whether the command runs through :func:`track_many` (Ray, or local chunking) instead of its
    single-process path.

    Raises:
        ValueError: a Ray-only flag (``--address``, ``--workers``, ``--num-gpus``) with ``--engine local``.
    """
    from ibntrack.distributed.engines import check_engine_args

    check_engine_args(args.engine, args.workers, args.address, args.num_gpus)
    return getattr(args, "engine", "local") == "ray" or bool(getattr(args, "chunk_frames", None))


def _engine_kwargs(args: argparse.Namespace) -> dict:
    return {
        "engine": args.engine,
        "workers": args.workers,
        "address": args.address,
        "num_cpus": args.num_cpus,
        "num_gpus": args.num_gpus,
    }


def run_track_engine(args: argparse.Namespace, tracker_kwargs: dict) -> int:
    """``ibntrack track --engine ray …``: exit status 0 when every source is done or skipped, 1 when a
    source failed (the others still ran; the summary names it)."""
    from ibntrack.distributed import track_many

    report = track_many(
        args.source,
        args.weights,
        out_dir=args.out,
        resume=not args.overwrite,
        chunk_frames=args.chunk_frames,
        chunk_overlap=args.chunk_overlap,
        scene=args.scene,
        sparsity=args.sparsity,
        device=args.device,
        max_frames=args.max_frames,
        save_video=args.save_video,
        save_json=args.save_json,
        interpolate=args.interpolate,
        interpolate_gap=args.interpolate_gap,
        threads=args.threads,
        cmc=args.cmc,
        **_engine_kwargs(args),
        **tracker_kwargs,
    )
    print(report.summary())
    print(f"results in {args.out}")
    return 1 if report.failed else 0


def add_eval_tracking_flags(p: argparse.ArgumentParser) -> None:
    """``ibntrack eval --weights W``: track the ground-truth sequences into ``--results`` first."""
    p.add_argument(
        "--weights",
        type=Path,
        help="track every sequence of --gt with these weights into --results first (finished ones are "
        "skipped), then score; with the engine flags below",
    )
    add_engine_flags(p, chunking=False)


def track_for_eval(args: argparse.Namespace) -> None:
    """Runs the tracking pass of ``ibntrack eval --weights W`` (nothing without ``--weights``).

    Raises:
        ValueError: a sequence could not be tracked (names it), so it is never scored as empty.
    """
    if getattr(args, "weights", None) is None:
        if args.engine != "local":
            raise ValueError(
                "--engine ray: eval tracks only with --weights (give the checkpoint to track with)"
            )
        return
    engine_requested(args)  # refuses Ray-only flags without --engine ray
    from ibntrack.distributed import track_many

    # the defaults of `ibntrack track` (its --precision auto): eval --weights W == track, then eval
    report = track_many(args.gt, args.weights, out_dir=args.results, precision="auto", **_engine_kwargs(args))
    print(report.summary())
    if report.failed:
        raise ValueError("tracking failed on: " + "; ".join(str(s.error) for s in report.failed))
