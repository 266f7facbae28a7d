"""The ``ibntrack`` command line. The only module that reads ``sys.argv``.

Subcommands: ``demo``, ``synth``, ``train``, ``track``, ``eval``, ``export``, ``convert``, ``tune``.
``ibntrack CMD --help`` explains each flag.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from ibntrack.cliargs import input_size_wh, positive_int, size_wh, unit_float

__all__ = ["main", "build_parser"]

log = logging.getLogger("ibntrack")


# value types of the flags, shared with data/convert.py and tune.py; one size syntax: WIDTHxHEIGHT
_size = size_wh
_positive_int = positive_int
_unit_float = unit_float


# ----------------------------------------------------------------------------------------------- synth
def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="generate a synthetic MOTChallenge sequence in a visual domain",
        description="Write one procedurally generated sequence (img1/, gt/gt.txt, seqinfo.ini with the "
        "domain's scene keywords). The same --seed in two domains gives the same boxes.",
    )
    p.add_argument(
        "--domain",
        default="summer",
        help="summer | winter | night | fog | rain (default summer); ignored with --style",
    )
    p.add_argument("--style", type=Path, help="a YAML file describing a user-defined style")
    p.add_argument("--frames", type=_positive_int, default=300, help="number of frames (default 300)")
    p.add_argument(
        "--objects",
        type=_positive_int,
        default=20,
        help="objects in the scene at a time, on average (default 20)",
    )
    p.add_argument("--size", type=_size, default=(640, 360), help="frame size WxH (default 640x360)")
    p.add_argument("--seed", type=int, default=0, help="geometry and appearance seed (default 0)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate written to seqinfo.ini (default 30)")
    p.add_argument("--name", help="sequence folder name (default synth-<domain>-<seed>)")
    p.add_argument(
        "--camera",
        choices=("static", "pan", "shake", "drone"),
        default="static",
        help="camera motion: static, a slow pan, hand-held shake, or a drifting, zooming drone "
        "(ground truth stays exact; default static)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder to create the sequence in")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from ibntrack.data.synth import generate_sequence
    from ibntrack.fileio import check_writable_dir

    check_writable_dir(args.out, "--out")

    path = generate_sequence(
        args.out,
        domain=args.domain,
        frames=args.frames,
        objects=args.objects,
        size=args.size,
        seed=args.seed,
        style=args.style,
        name=args.name,
        frame_rate=args.fps,
        camera=args.camera,
    )
    print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on MOTChallenge-format data (one CPU, one GPU, or torchrun DDP)",
        description="Train from a YAML config; any field can be overridden as section.field=value, e.g. "
        "`ibntrack train --config configs/synth_resnet18_ibn.yaml train.epochs=5 model.arch=resnet18`. "
        "Under `torchrun --nproc_per_node N` the same command trains with DistributedDataParallel.",
    )
    p.add_argument("--config", type=Path, required=True, help="YAML config (see configs/)")
    p.add_argument("--data", nargs="+", help="training data roots or sequences (overrides data.train)")
    p.add_argument("--out", help="output folder for checkpoints and logs (overrides train.out_dir)")
    p.add_argument(
        "--train-scene",
        help="training scene keywords, e.g. 'summer, street' (overrides the sequences' sceneKeywords)",
    )
    p.add_argument("--resume", help="resume an interrupted run from its last.pt")
    p.add_argument(
        "--finetune",
        help="start from these weights; a new identity count re-initialises "
        "only the ReID classifier and the scene keywords are merged",
    )
    p.add_argument(
        "--pretrained",
        help="local torchvision ResNet / IBN-Net resnet*_ibn_a weights for the backbone (model.pretrained)",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="train even when the pretrained file does not fit the backbone completely",
    )
    p.add_argument("overrides", nargs="*", help="section.field=value overrides")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from ibntrack.config import load_config
    from ibntrack.engine.train import fit

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.train={args.data!r}".replace("'", '"'))
    if args.out:
        overrides.append(f"train.out_dir={args.out}")
    if args.train_scene:
        words = [w.strip() for w in args.train_scene.replace(";", ",").split(",") if w.strip()]
        overrides.append(f"train.train_scene={words!r}".replace("'", '"'))
    if args.resume:
        overrides.append(f"train.resume={args.resume}")
    if args.finetune:
        overrides.append(f"train.finetune={args.finetune}")
    if args.pretrained:
        overrides.append(f"model.pretrained={args.pretrained}")
    if args.allow_partial:
        overrides.append("model.pretrained_allow_partial=true")
    cfg = load_config(args.config, overrides)
    path = fit(cfg)
    print(f"checkpoint: {path}")
    return 0


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
        type=_positive_int,
        help="force the IN sparsity factor s (1 = recompute IN statistics every frame)",
    )
    p.add_argument(
        "--conf",
        type=_unit_float,
        help="tracker's high-score threshold (default: the checkpoint's, else 0.5)",
    )
    p.add_argument(
        "--new-conf",
        type=_unit_float,
        help="lowest score that starts a new track (default: the checkpoint's, else 0.6)",
    )
    p.add_argument("--low-conf", type=_unit_float, help="lowest score kept for the second pass (default 0.1)")
    p.add_argument(
        "--track-buffer", type=_positive_int, help="frames a lost track is kept (at 30 fps; default 30)"
    )
    p.add_argument("--no-embeddings", action="store_true", help="associate by motion and IoU only")
    p.add_argument(
        "--drift-threshold",
        type=float,
        default=None,
        help="event-driven IN refresh threshold (default 0.1; 0 disables)",
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
    p.add_argument("--threads", type=_positive_int, help="CPU threads for PyTorch (default: PyTorch's)")
    p.add_argument("--max-frames", type=_positive_int, help="stop each source after this many frames")
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
    kwargs["precision"] = precision
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


# ------------------------------------------------------------------------------------------------ eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score MOTChallenge result files against ground truth with TrackEval",
        description="HOTA, DetA, AssA, MOTA, IDF1, IDSW per sequence and combined (TrackEval).",
    )
    p.add_argument(
        "--gt", required=True, type=Path, help="a MOT sequence or a root of sequences with gt/gt.txt"
    )
    p.add_argument("--results", required=True, type=Path, help="folder with <seq>.txt result files")
    p.add_argument("--json", type=Path, help="also write the metrics as JSON")
    p.add_argument("--csv", type=Path, help="also write the metrics as CSV")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="score a sequence without a result file as empty instead of failing",
    )
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from ibntrack.eval.metrics import evaluate
    from ibntrack.fileio import check_writable_file

    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path is not None:  # checked before scoring, so a bad path never throws the scores away
            check_writable_file(path, flag)
    report = evaluate(args.gt, args.results, allow_missing=args.allow_missing)
    print(report.to_table())
    if args.json:
        report.to_json(args.json)
    if args.csv:
        report.to_csv(args.csv)
    return 0


# ------------------------------------------------------------------------------------------------ demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a winter sequence, track it with the shipped summer-trained model, score it",
        description="The main job on the embedded default, nothing to fetch: synthesise a winter sequence, "
        "track it with the small IBN model shipped in the package (trained on synthetic summer), "
        "evaluate with TrackEval, print the metrics and write the annotated video.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--domain", default="winter", help="domain of the generated sequence (default winter)")
    p.add_argument("--frames", type=_positive_int, default=150, help="frames to generate (default 150)")
    p.add_argument("--seed", type=int, default=7, help="sequence seed (default 7)")
    p.add_argument("--weights", type=Path, help="use these weights instead of the shipped IBN model")
    p.add_argument(
        "--baseline",
        type=Path,
        help="also track with these weights and print both side by side (default: the shipped plain-BN "
        "twin, when --weights is not given)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ibntrack.demo import run_demo

    return run_demo(
        out=args.out,
        domain=args.domain,
        frames=args.frames,
        seed=args.seed,
        weights=args.weights,
        device=args.device,
        save_video=not args.no_video,
        baseline=args.baseline,
    )


# ---------------------------------------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    from ibntrack.export import CHECK_TOL, DEFAULT_OPSET
    from ibntrack.runtime.ort import CACHED_SUFFIX

    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (refresh + cached-statistics graphs) for ONNX Runtime",
        description="Writes OUT (the refresh graph: images -> hm, wh, reg, id plus each IBN layer's "
        f"instance-norm statistics) and OUT-stem{CACHED_SUFFIX} (the cached graph: images and "
        "the cached statistics -> maps, IN a per-channel affine map), BN folded in both, "
        "with the model's card as metadata (input size, classes, training scene, arch, tracker "
        "settings). Then runs both in ONNX Runtime and compares with PyTorch (fails past "
        f"{CHECK_TOL:g}). Track with `ibntrack track SOURCE --weights OUT --backend onnxruntime`.",
    )
    p.add_argument("--weights", required=True, type=Path, help="checkpoint from `ibntrack train` (.pt)")
    p.add_argument("--out", required=True, type=Path, help="output .onnx file (the refresh graph)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument(
        "--input-size",
        type=input_size_wh,
        default=None,
        metavar="WxH",
        help="example input WIDTHxHEIGHT, multiples of 32, e.g. 1088x608 (default: the checkpoint's)",
    )
    p.add_argument(
        "--static",
        action="store_true",
        help="fix batch 1 and the input size (default: dynamic batch, height and width)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="write a static int8 (QDQ, per-channel weights) pair instead of fp32, calibrated on "
        "--calibration; IN statistics, IN affine maps and the heads' last layers stay float",
    )
    p.add_argument(
        "--calibration",
        help="frames to calibrate int8 ranges on: a video, an image folder, a MOT sequence or a root of "
        "them (scenes like the deployment's; required with --quantize)",
    )
    p.add_argument(
        "--calibration-frames",
        type=_positive_int,
        default=32,
        help="frames taken evenly over --calibration (default 32)",
    )
    p.set_defaults(func=_run_export)


def _calibration_frames(spec: str, count: int):
    """Up to ``count`` BGR frames spread evenly over every source of ``spec`` (in source order)."""
    from ibntrack.engine.sources import open_sources

    sources = open_sources(spec)
    total = sum(src.length or 0 for src in sources)
    stride = max(1, total // count) if total else 1
    seen = 0
    for src in sources:
        for _, frame in src:
            if seen % stride == 0:
                yield frame
            seen += 1


def _run_export(args: argparse.Namespace) -> int:
    from ibntrack.export import export_checkpoint

    if args.quantize and not args.calibration:
        raise SystemExit(
            "ibntrack export: --quantize int8 needs --calibration SOURCE (frames of the scenes to deploy "
            "on: a video, an image folder or a MOT sequence); int8 ranges are not guessed"
        )
    if args.calibration and not args.quantize:
        raise SystemExit("ibntrack export: --calibration is only used with --quantize int8")
    if args.quantize:
        return _run_export_int8(args)
    report = export_checkpoint(
        args.weights, args.out, args.opset, args.input_size, not args.static, not args.no_check
    )
    print(f"wrote {report.path} (refresh graph: images -> hm, wh, reg, id + IN statistics)")
    if report.cached_path is not None:
        print(
            f"wrote {report.cached_path} (cached graph: images + IN statistics -> maps; "
            f"{report.ibn_layers} IBN layers)"
        )
    if report.max_abs_diff is None:
        print("check skipped (--no-check)")
    else:
        print(f"check vs PyTorch: max abs diff {report.max_abs_diff:.3g}")
    return 0


def _run_export_int8(args: argparse.Namespace) -> int:
    import tempfile

    from ibntrack.engine.sources import open_sources
    from ibntrack.export import export_checkpoint
    from ibntrack.export.quantize import compare_exports, quantize_export

    open_sources(args.calibration)  # a bad calibration source fails before any export work
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{args.out.stem}.fp32.", dir=args.out.parent) as tmp:
        fp32 = Path(tmp) / args.out.name
        base = export_checkpoint(
            args.weights, fp32, args.opset, args.input_size, not args.static, not args.no_check
        )
        report = quantize_export(
            fp32,
            args.out,
            _calibration_frames(args.calibration, args.calibration_frames),
            calibration_frames=args.calibration_frames,
            calibration_source=str(args.calibration),
        )
        diff = compare_exports(fp32, args.out, _calibration_frames(args.calibration, 4))
    print(f"wrote {report.path} (int8 refresh graph: images -> maps + IN statistics, statistics in float)")
    if report.cached_path is not None:
        print(f"wrote {report.cached_path} (int8 cached graph: images + IN statistics -> maps)")
    print(
        f"calibrated on {report.calibration_frames} frames of {args.calibration}; int8 convolutions: "
        f"{report.quantized_convs.get('refresh', 0)} per graph; float: IN statistics and affine maps, "
        "the heads' last layers"
    )
    if base.max_abs_diff is not None:
        print(f"fp32 export check vs PyTorch: max abs diff {base.max_abs_diff:.3g}")
    print(
        "int8 vs fp32 on 4 calibration frames (refresh + cached): "
        + ", ".join(f"{k} {v:.3g}" for k, v in diff.items())
    )
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``ibntrack`` argument parser (all subcommands)."""
    from ibntrack.version import __version__

    parser = argparse.ArgumentParser(
        prog="ibntrack",
        description="One-shot multi-object tracking (detection + ReID in one network) with instance-batch "
        "normalization, built to keep its accuracy in scenes it was not trained on.",
    )
    parser.add_argument("--version", action="version", version=f"ibntrack {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_synth, _add_train, _add_track, _add_eval, _add_export):
        add(sub)
    from ibntrack.data.convert import add_convert_parser
    from ibntrack.tune import add_tune_parser

    add_convert_parser(sub)
    add_tune_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ibntrack`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = _interrupt_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, ImportError) as exc:
        if args.verbose:
            raise
        print(f"ibntrack {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print(f"ibntrack {args.command}: error: input nested too deeply to process", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm():
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so commands finalise and clean up the same way.

    Returns the previous handler (``None`` when not in the main thread, where handlers cannot be set).
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
