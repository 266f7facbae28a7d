"""``ibntrack track``: the tracking flags (shared with ``tune``'s network pass) and the subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ibntrack.cli.engine_flags import add_engine_flags, engine_requested, run_track_engine
from ibntrack.cli.flags import (
    add_association_flags,
    add_network_flags,
    apply_threads,
    inference_config,
    tracker_kwargs,
)


# ----------------------------------------------------------------------------------------------- track
def _tracker_kwargs(args: argparse.Namespace) -> dict:
    """:meth:`~ibntrack.engine.infer.Tracker.from_checkpoint` keywords of the merged settings (checkpoint →
    ``--tracker-config`` → flags, :func:`ibntrack.cli.flags.inference_config`); the merged ``scene``,
    ``sparsity``, ``device`` and ``cmc`` are left in ``args``."""
    return tracker_kwargs(inference_config(args))


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="track a video, an image folder, a MOT sequence (or a root of them), a camera or a stream",
        description="Writes <out>/<seq>.txt in MOTChallenge format (frame,id,x,y,w,h,score,-1,-1,-1), and "
        "optionally an annotated H.264 video and JSON lines per frame.",
    )
    p.add_argument("source", help="video file, image folder, MOT sequence or root, camera index, or URL")
    p.add_argument(
        "--weights",
        type=Path,
        help="checkpoint from `ibntrack train` / `ibntrack adapt` (.pt) or an ONNX export with --backend "
        "onnxruntime (default: the shipped model adapted to real pedestrian footage)",
    )
    p.add_argument(  # a str, not a Path: with --engine ray it may be a URL (Path("s3://b") is "s3:/b")
        "--out", default="runs/track", help="output folder (default runs/track); a URL with --engine ray"
    )
    p.add_argument("--save-video", action="store_true", help="write an annotated H.264 mp4 per source")
    p.add_argument("--save-json", action="store_true", help="write JSON lines (one per frame) per source")
    p.add_argument(
        "--cmc",
        choices=("none", "sparse", "ecc"),
        help="camera-motion compensation from the frames: sparse optical flow or ECC on a downscaled "
        "frame, RANSAC affine applied to the Kalman states (default none)",
    )
    p.add_argument(
        "--interpolate",
        choices=("none", "linear", "gsi"),
        default="none",
        help="after tracking, fill track gaps of up to --interpolate-gap frames in the result files: "
        "linear, or linear then Gaussian-smoothed (gsi) (default none)",
    )
    p.add_argument(
        "--interpolate-gap", type=int, default=20, help="longest gap filled by --interpolate (default 20)"
    )
    add_network_flags(p)
    add_association_flags(p)
    add_engine_flags(p)  # --engine local|ray, --address, --workers, --chunk-frames ... (issue 24)
    p.set_defaults(func=_run_track)


def _print_summaries(summaries) -> None:
    print(
        f"{'sequence':<24}{'frames':>8}{'tracks':>8}{'fps':>8}{'s':>4}{'refresh':>9}"
        f"{'model ms':>10}{'decode ms':>11}{'assoc ms':>10}"
    )
    for s in summaries:
        ms = s.mean_ms
        print(
            f"{s.name:<24}{s.frames:>8}{s.tracks:>8}{s.fps:>8.1f}{s.sparsity:>4}{s.refresh_fraction:>9.2f}"
            f"{ms['model']:>10.1f}{ms['decode']:>11.2f}{ms['association']:>10.2f}"
        )


def _run_track(args: argparse.Namespace) -> int:
    from ibntrack.demo import shipped_weights
    from ibntrack.engine.infer import track

    if args.weights is None:  # the model that knows real pedestrians (`ibntrack adapt` on real footage)
        args.weights = shipped_weights("real")
    if engine_requested(args):  # Ray, or chunked sources: ibntrack.distributed.track_many
        return run_track_engine(args, _tracker_kwargs(args))
    kwargs = _tracker_kwargs(args)  # first: it leaves the merged scene, sparsity, device, cmc in args
    apply_threads(args)
    summaries = track(
        args.source,
        args.weights,
        scene=args.scene,
        out_dir=args.out,
        save_video=args.save_video,
        save_json=args.save_json,
        device=args.device,
        sparsity=args.sparsity,
        max_frames=args.max_frames,
        cmc=args.cmc,
        **kwargs,
    )
    if args.interpolate != "none":
        from ibntrack.tracking.interpolate import interpolate_file

        for s in summaries:
            if s.result_file is not None and Path(s.result_file).is_file():
                interpolate_file(s.result_file, method=args.interpolate, max_gap=args.interpolate_gap)
    _print_summaries(summaries)
    for s in summaries:
        if s.missing_frames:
            print(
                f"note: {s.name}: {s.missing_frames} frame number(s) missing from the image folder (skipped)"
            )
        if s.truncated:
            print(f"note: {s.name}: the video ended early (truncated or corrupt); {s.frames} frames tracked")
    print(f"results in {args.out}")
    if summaries and summaries[-1].interrupted:
        print(
            f"interrupted: the results of {summaries[-1].name} hold its first {summaries[-1].frames} frames",
            file=sys.stderr,
        )
        return 130
    return 0
