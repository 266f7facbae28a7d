"""``ibntrack tune``: its parser and its run (the search itself is :mod:`ibntrack.tune`).

The network pass takes ``track``'s ``network`` flag group (:func:`ibntrack.cli.flags.add_network_flags`)
with the same defaults, and merges the same :class:`~ibntrack.config.InferenceConfig` (checkpoint →
``--tracker-config`` → flags), so the thresholds are tuned on the detections ``ibntrack track`` later sees
(the same number format, folding, BN adaptation, drift refresh), starting from the thresholds ``track``
would use.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ibntrack.cli.flags import (
    TRACKER_CONFIG_HELP,
    add_network_flags,
    apply_threads,
    inference_config,
    tracker_kwargs,
)
from ibntrack.cliargs import positive_int

__all__ = ["add_tune_parser", "network_pass"]


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    """``ibntrack tune SOURCE --weights W --out OUT``."""
    from ibntrack.tune import SEARCH_SPACE

    p = sub.add_parser(
        "tune",
        help="search tracker thresholds on labelled sequences for the best HOTA (Optuna)",
        description="Runs the network once per labelled sequence, then re-runs only the association for "
        "each trial (TPE sampler, fixed seed and budget) and scores it with TrackEval. Writes the best "
        "settings into a copy of the checkpoint (--out tuned.pt) or a YAML file for "
        "`ibntrack track --tracker-config`.",
    )
    p.add_argument("source", help="a labelled MOTChallenge sequence (with gt/gt.txt) or a root of them")
    p.add_argument("--weights", required=True, type=Path, help="checkpoint (.pt) or ONNX export")
    p.add_argument("--out", required=True, type=Path, help="tuned checkpoint copy (.pt) or settings (.yaml)")
    p.add_argument("--trials", type=positive_int, default=50, help="trial budget (default 50)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument(
        "--params",
        help="comma-separated settings to search (default all: " + ",".join(SEARCH_SPACE) + ")",
    )
    p.add_argument("--tracker-config", type=Path, help=TRACKER_CONFIG_HELP + "; the search starts from them")
    add_network_flags(p)
    p.set_defaults(func=_run_tune)


def network_pass(args: argparse.Namespace, cfg: Any = None) -> list[Any]:
    """Tune's network pass for its parsed flags: one :class:`~ibntrack.tune.CachedSequence` per labelled
    sequence, the network run as ``ibntrack track`` runs it with the same flags and ``--tracker-config``
    (``cfg``: their :func:`~ibntrack.cli.flags.inference_config`, merged here when not given)."""
    from ibntrack.distributed.tune_pass import cache_function  # --engine ray: one task per sequence

    cfg = cfg or inference_config(args)
    apply_threads(args)
    return cache_function(args)(
        args.source,
        cfg.runtime.weights,
        scene=cfg.stream.scene,
        sparsity=cfg.stream.sparsity,
        device=cfg.runtime.device,
        max_frames=args.max_frames,
        **tracker_kwargs(cfg, decode=False),
    )


def _run_tune(args: argparse.Namespace) -> int:
    from ibntrack.fileio import check_writable_file
    from ibntrack.runtime import is_onnx
    from ibntrack.tune import _check_params, _import_optuna, tune, write_settings

    out = Path(args.out)
    if out.suffix not in (".pt", ".yaml", ".yml"):
        raise ValueError(f"--out {out}: give a .pt (a tuned copy of the checkpoint) or a .yaml file")
    if out.suffix == ".pt" and is_onnx(args.weights, args.backend):
        raise ValueError("--out .pt needs a .pt checkpoint as --weights; write a .yaml file for ONNX models")
    _import_optuna()
    check_writable_file(out, "--out")  # before the network pass and the trials, not after them
    params = [p.strip() for p in args.params.split(",") if p.strip()] if args.params else None
    _check_params(params)  # before the network pass
    cfg = inference_config(args)  # the settings `ibntrack track` would run with these flags
    t0 = time.perf_counter()
    seqs = network_pass(args, cfg)
    t_net = time.perf_counter() - t0
    base = cfg.association
    frames = sum(len(s.frames) for s in seqs)
    print(f"network pass: {len(seqs)} sequence(s), {frames} frames in {t_net:.1f} s; {args.trials} trials")

    def report(number: int, hota: float, best: float) -> None:
        if number % 10 == 0 or number == args.trials - 1:
            print(f"  trial {number:>4}: HOTA {100 * hota:5.1f}   best {100 * best:5.1f}")

    result = tune(seqs, base, trials=args.trials, seed=args.seed, params=params, callback=report)
    note = (
        f"ibntrack tune {args.source} --weights {args.weights} --trials {args.trials} --seed {args.seed}\n"
        f"HOTA on the tuning sequences: {100 * result.base_hota:.1f} -> {100 * result.best_hota:.1f}"
    )
    path = write_settings(out, result.best, args.weights, note)
    print(
        f"HOTA {100 * result.base_hota:.1f} (starting settings) -> {100 * result.best_hota:.1f} (best) on "
        f"{', '.join(s.name for s in seqs)}; search {result.seconds['search']:.1f} s"
    )
    changed = result.changed()
    print("changed: " + (", ".join(f"{k}={v:.3g}" for k, v in changed.items()) if changed else "nothing"))
    print(f"wrote {path}")
    return 0
