"""``ibntrack track``: the tracking flags (shared with ``tune``'s network pass) and the subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ibntrack.cli.engine_flags import add_engine_flags, engine_requested, run_track_engine
from ibntrack.cliargs import non_negative_int, positive_int, unit_float


# ----------------------------------------------------------------------------------------------- track
def _add_tracking_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scene",
        help="live scene keywords, e.g. 'winter, snow, street'; sets the sparsity "
        "factor from their relevance to the training scene (default: the "
        "sequence's sceneKeywords, else exact IN)",
    )
    p.add_argument(
        "--sparsity",
        type=positive_int,
        help="force the IN sparsity factor s (1 = recompute IN statistics every frame)",
    )
    p.add_argument(
        "--conf",
        type=unit_float,
        help="tracker's high-score threshold (default: the checkpoint's, else 0.5)",
    )
    p.add_argument(
        "--new-conf",
        type=unit_float,
        help="lowest score that starts a new track (default: the checkpoint's, else 0.6)",
    )
    p.add_argument("--low-conf", type=unit_float, help="lowest score kept for the second pass (default 0.1)")
    p.add_argument(
        "--track-buffer", type=positive_int, help="frames a lost track is kept (at 30 fps; default 30)"
    )
    p.add_argument("--no-embeddings", action="store_true", help="associate by motion and IoU only")
    p.add_argument(
        "--drift-threshold",
        type=float,
        default=None,
        help="event-driven IN refresh threshold (default 0.1; 0 disables)",
    )
    p.add_argument(
        "--adapt-bn",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="test-time BN adaptation: re-estimate the BatchNorm statistics (plain BN and the BN half of "
        "IBN) from the first K frames of each source, then freeze them; frame t is tracked with the "
        "statistics of frames 0..t, mixed with the training ones as a prior worth 8 frames. Combines with "
        "--sparsity; torch backend only (default 0 = off)",
    )
    p.add_argument("--no-fold", action="store_true", help="do not fold BN/IN into convolutions")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="network runtime; onnxruntime takes the .onnx written by `ibntrack export`",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        default="auto",
        help="number format of the torch backend: auto (default) = bf16 on a CPU with native bf16 "
        "(avx512_bf16/AMX), fp16 on CUDA, else fp32; bf16 on a CPU without it falls back to fp32 with a "
        "warning. An ONNX export runs in its own format (int8: `ibntrack export --quantize int8`)",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: PyTorch's)")
    p.add_argument("--max-frames", type=positive_int, help="stop each source after this many frames")
    p.add_argument(
        "--tracker-config",
        type=Path,
        help="YAML of tracker settings (as written by `ibntrack tune --out FILE.yaml`); the flags above "
        "override it, it overrides the checkpoint's",
    )


def _tracker_kwargs(args: argparse.Namespace) -> dict:
    """Tracker settings the user gave; the rest come from the checkpoint's calibrated thresholds."""
    changes = {}
    if getattr(args, "tracker_config", None):
        from ibntrack.tune import load_tracker_settings

        changes.update(load_tracker_settings(args.tracker_config))
    if args.conf is not None:
        changes["det_thresh"] = args.conf
    if args.low_conf is not None:
        changes["low_thresh"] = args.low_conf
    if args.track_buffer is not None:
        changes["track_buffer"] = args.track_buffer
    if args.no_embeddings:
        changes["use_embeddings"] = False
    if args.new_conf is not None:
        changes["new_track_thresh"] = args.new_conf
    kwargs = {"tracker_overrides": changes, "fold": not args.no_fold, "backend": args.backend}
    precision = getattr(args, "precision", "fp32")
    if args.backend == "onnxruntime" or str(args.weights).endswith(".onnx"):
        if precision not in ("fp32", "auto"):
            raise SystemExit(
                f"ibntrack track: --precision {precision} applies to the torch backend; an ONNX export runs "
                "in the format it was written in (int8: ibntrack export --quantize int8 --calibration SRC)"
            )
        precision = "fp32"
        if getattr(args, "adapt_bn", 0):
            raise SystemExit(
                "ibntrack track: --adapt-bn is only supported by the PyTorch backend (--backend torch with "
                "a .pt checkpoint); an ONNX export has its BN statistics folded into the graph"
            )
    kwargs["precision"] = precision
    if getattr(args, "adapt_bn", 0):
        kwargs["adapt_bn"] = args.adapt_bn
    if args.drift_threshold is not None:
        kwargs["drift_threshold"] = args.drift_threshold or None
    return kwargs


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
        required=True,
        type=Path,
        help="checkpoint from `ibntrack train` (.pt) or an ONNX export with --backend onnxruntime",
    )
    p.add_argument("--out", type=Path, default=Path("runs/track"), help="output folder (default runs/track)")
    p.add_argument("--save-video", action="store_true", help="write an annotated H.264 mp4 per source")
    p.add_argument("--save-json", action="store_true", help="write JSON lines (one per frame) per source")
    p.add_argument(
        "--cmc",
        choices=("none", "sparse", "ecc"),
        default="none",
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
    _add_tracking_flags(p)
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
    from ibntrack.engine.infer import track

    if engine_requested(args):  # Ray, or chunked sources: ibntrack.distributed.track_many
        return run_track_engine(args, _tracker_kwargs(args))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
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
        **_tracker_kwargs(args),
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
