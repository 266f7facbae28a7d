"""Flag groups shared by the subcommands that run the network (``track``, ``tune``) and what they build.

* :func:`add_network_flags` — everything that changes the network's detections (``--scene``,
  ``--sparsity``, ``--drift-threshold``, ``--adapt-bn``, ``--no-fold``, ``--device``, ``--backend``,
  ``--precision``, ``--threads``, ``--max-frames``), declared once so that ``tune`` caches detections in the
  number format and with the settings ``track`` later uses;
* :func:`add_association_flags` — the tracker thresholds ``track`` takes (``--conf`` ...), and
  ``--tracker-config``.

:func:`network_kwargs` and :func:`association_overrides` turn parsed flags into the keyword arguments of
:meth:`ibntrack.engine.infer.Tracker.from_checkpoint`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ibntrack.cliargs import non_negative_int, positive_int, unit_float

__all__ = ["add_association_flags", "add_network_flags", "association_overrides", "network_kwargs"]


def add_network_flags(p: argparse.ArgumentParser) -> None:
    """The ``network`` group: how the network runs on each source (shared by ``track`` and ``tune``)."""
    g = p.add_argument_group(
        "network", "how the network runs (the same flags and defaults in track and tune)"
    )
    g.add_argument(
        "--scene",
        help="live scene keywords, e.g. 'winter, snow, street'; sets the sparsity "
        "factor from their relevance to the training scene (default: the "
        "sequence's sceneKeywords, else exact IN)",
    )
    g.add_argument(
        "--sparsity",
        type=positive_int,
        help="force the IN sparsity factor s (1 = recompute IN statistics every frame)",
    )
    g.add_argument(
        "--drift-threshold",
        type=float,
        default=None,
        help="event-driven IN refresh threshold (default 0.1; 0 disables)",
    )
    g.add_argument(
        "--adapt-bn",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="test-time BN adaptation: re-estimate the BatchNorm statistics (plain BN and the BN half of "
        "IBN) from the first K frames of each source, then freeze them; frame t is tracked with the "
        "statistics of frames 0..t, mixed with the training ones as a prior worth 8 frames. Combines with "
        "--sparsity; torch backend only (default 0 = off)",
    )
    g.add_argument("--no-fold", action="store_true", help="do not fold BN/IN into convolutions")
    g.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    g.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="network runtime; onnxruntime takes the .onnx written by `ibntrack export`",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        default="auto",
        help="number format of the torch backend: auto (default) = bf16 on a CPU with native bf16 "
        "(avx512_bf16/AMX), fp16 on CUDA, else fp32; bf16 on a CPU without it falls back to fp32 with a "
        "warning. An ONNX export runs in its own format (int8: `ibntrack export --quantize int8`)",
    )
    g.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: PyTorch's)")
    g.add_argument("--max-frames", type=positive_int, help="stop each source after this many frames")


def add_association_flags(p: argparse.ArgumentParser) -> None:
    """The ``association`` group: tracker thresholds over the checkpoint's and ``--tracker-config``."""
    g = p.add_argument_group(
        "association", "tracker thresholds; each overrides --tracker-config, which overrides the checkpoint's"
    )
    g.add_argument(
        "--conf",
        type=unit_float,
        help="tracker's high-score threshold (default: the checkpoint's, else 0.5)",
    )
    g.add_argument(
        "--new-conf",
        type=unit_float,
        help="lowest score that starts a new track (default: the checkpoint's, else 0.6)",
    )
    g.add_argument("--low-conf", type=unit_float, help="lowest score kept for the second pass (default 0.1)")
    g.add_argument(
        "--track-buffer", type=positive_int, help="frames a lost track is kept (at 30 fps; default 30)"
    )
    g.add_argument("--no-embeddings", action="store_true", help="associate by motion and IoU only")
    g.add_argument(
        "--tracker-config",
        type=Path,
        help="YAML of tracker settings (as written by `ibntrack tune --out FILE.yaml`); the flags above "
        "override it, it overrides the checkpoint's",
    )


def network_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """:meth:`~ibntrack.engine.infer.Tracker.from_checkpoint` keywords of the ``network`` group (all but
    ``scene``, ``sparsity`` and ``device``, which travel on their own).

    Raises:
        SystemExit: ``--precision`` other than fp32/auto, or ``--adapt-bn``, for an ONNX export.
    """
    from ibntrack.runtime.options import RuntimeConfig

    try:  # the one ONNX rule (RuntimeConfig's), checked before any work
        runtime = RuntimeConfig(
            weights=str(args.weights),
            backend=args.backend,
            device=args.device,
            precision=args.precision,
            adapt_bn=args.adapt_bn,
        ).resolved()
    except ValueError as exc:
        raise SystemExit(f"ibntrack {args.command}: {exc}") from None
    kwargs: dict[str, Any] = {
        "fold": not args.no_fold,
        "backend": args.backend,
        "precision": runtime.precision,
    }
    if args.adapt_bn:
        kwargs["adapt_bn"] = args.adapt_bn
    if args.drift_threshold is not None:
        kwargs["drift_threshold"] = args.drift_threshold or None
    return kwargs


def association_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{TrackerConfig field: value}`` the user gave: ``--tracker-config``, then the threshold flags."""
    changes: dict[str, Any] = {}
    if args.tracker_config:
        from ibntrack.tune import load_tracker_settings

        changes.update(load_tracker_settings(args.tracker_config))
    if getattr(args, "conf", None) is not None:
        changes["det_thresh"] = args.conf
    if getattr(args, "low_conf", None) is not None:
        changes["low_thresh"] = args.low_conf
    if getattr(args, "track_buffer", None) is not None:
        changes["track_buffer"] = args.track_buffer
    if getattr(args, "no_embeddings", False):
        changes["use_embeddings"] = False
    if getattr(args, "new_conf", None) is not None:
        changes["new_track_thresh"] = args.new_conf
    return changes
