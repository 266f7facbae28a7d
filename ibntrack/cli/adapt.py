"""``ibntrack adapt``: self-training on your own unlabeled footage with a packaged real teacher."""

from __future__ import annotations

import argparse
from pathlib import Path

from ibntrack.cliargs import input_size_wh, non_negative_int, positive_int, unit_float


def _add_adapt(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adapt",
        help="fine-tune a model on your own unlabeled footage (labels from a packaged people detector)",
        description="Self-training without labels. A real people detector that ships inside OpenCV (HOG, "
        "trained on INRIA pedestrians) labels every frame; the labels are filtered by background "
        "subtraction (static cameras; a moving camera is detected and the check skipped) and by time "
        "(boxes must form tracklets of --min-track frames; gaps of --max-gap frames are filled); tracklet "
        "ids become ReID identities; the network is fine-tuned on them from --weights. Each extra --rounds "
        "re-labels the footage with the last student. Resumable: run the same command again after an "
        "interruption. Writes OUT/adapted.pt, a normal checkpoint that records the footage it adapted to.",
    )
    p.add_argument("sources", nargs="+", help="videos, image folders or MOT sequences (unlabeled)")
    p.add_argument("--weights", type=Path, help="checkpoint to start from (default: the shipped IBN model)")
    p.add_argument("--out", type=Path, required=True, help="run folder (labels, training, adapted.pt)")
    p.add_argument(
        "--teacher",
        choices=("hog", "cascade"),
        default="hog",
        help="packaged people detector giving the labels (default hog)",
    )
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="1 = teacher labels; each extra round re-labels with the last student (default 1)",
    )
    p.add_argument("--steps", type=positive_int, default=600, help="optimizer steps per round (default 600)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="frames per step (default 8)")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default 2e-4)")
    p.add_argument(
        "--input-size",
        type=input_size_wh,
        help="network input WxH, multiples of 32 (default 384 wide, the footage's aspect)",
    )
    p.add_argument("--scene", default="", help="keywords describing the footage, e.g. 'campus, winter'")
    p.add_argument("--seed", type=int, default=0, help="fine-tuning seed (default 0)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="training number format (auto: bf16 where the CPU has it natively)",
    )
    p.add_argument(
        "--max-frames",
        type=non_negative_int,
        default=0,
        help="use at most this many frames of each source (default 0 = all)",
    )
    p.add_argument(
        "--min-score", type=unit_float, default=0.5, help="lowest teacher score used (default 0.5)"
    )
    p.add_argument(
        "--min-track",
        type=positive_int,
        default=5,
        help="frames a tracklet needs to become a label (default 5)",
    )
    p.add_argument(
        "--max-gap",
        type=non_negative_int,
        default=5,
        help="longest gap inside a tracklet filled by interpolation (default 5)",
    )
    p.add_argument(
        "--background",
        choices=("auto", "on", "off"),
        default="auto",
        help="background-subtraction check: auto (static cameras only), on, off (default auto)",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: PyTorch's)")
    p.set_defaults(func=_run_adapt)


def _run_adapt(args: argparse.Namespace) -> int:
    from ibntrack.adapt import AdaptConfig, PseudoLabelConfig, adapt
    from ibntrack.demo import shipped_weights
    from ibntrack.scene import parse_scene

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    labels = PseudoLabelConfig(
        min_score=args.min_score,
        min_track=args.min_track,
        max_gap=args.max_gap,
        use_background=args.background,
    )
    cfg = AdaptConfig(
        teacher=args.teacher,
        rounds=args.rounds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        input_size=args.input_size,
        seed=args.seed,
        precision=args.precision,
        scene=tuple(sorted(parse_scene(args.scene).keywords)) if args.scene else (),
        max_frames=args.max_frames,
        labels=labels,
    )
    path = adapt(args.sources, args.weights or shipped_weights("ibn"), args.out, cfg)
    print(f"wrote {path}")
    print(f"track with it: ibntrack track VIDEO --weights {path}")
    return 0
