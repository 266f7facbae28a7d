"""``ibntrack synth``, ``train``, ``eval`` and ``demo``: data in, a model out, scores, the demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from ibntrack.cli.engine_flags import add_eval_tracking_flags, track_for_eval
from ibntrack.cliargs import positive_int, size_wh


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
    p.add_argument("--frames", type=positive_int, default=300, help="number of frames (default 300)")
    p.add_argument(
        "--objects",
        type=positive_int,
        default=20,
        help="objects in the scene at a time, on average (default 20)",
    )
    p.add_argument("--size", type=size_wh, default=(640, 360), help="frame size WxH (default 640x360)")
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
    from ibntrack.training.train import fit

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.train={args.data!r}".replace("'", '"'))
    if args.out:
        overrides.append(f"train.out_dir={args.out}")
    if args.train_scene:
        from ibntrack.data.motio import split_list  # the one parser of keyword lists

        words = list(split_list(args.train_scene))
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
    add_eval_tracking_flags(p)  # --weights and the engine flags: track, then score (issue 24)
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from ibntrack.eval.metrics import evaluate
    from ibntrack.fileio import check_writable_file

    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path is not None:  # checked before scoring, so a bad path never throws the scores away
            check_writable_file(path, flag)
    track_for_eval(args)  # with --weights: track the sequences into --results first
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
    p.add_argument("--frames", type=positive_int, default=150, help="frames to generate (default 150)")
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
