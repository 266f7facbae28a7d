"""``ibntrack export``: ONNX (refresh + cached graphs), fp32 or int8 (``--quantize``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ibntrack.cliargs import input_size_wh, positive_int


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
        type=positive_int,
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
