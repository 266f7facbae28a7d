"""Flag groups shared by the subcommands that run the network (``track``, ``tune``) and what they build.

* :func:`add_network_flags` — everything that changes the network's detections (``--scene``,
  ``--sparsity``, ``--drift-threshold``, ``--adapt-bn``, ``--no-fold``, ``--device``, ``--backend``,
  ``--precision``, ``--threads``, ``--max-frames``), declared once so that ``tune`` caches detections in the
  number format and with the settings ``track`` later uses;
* :func:`add_association_flags` — the tracker thresholds ``track`` takes (``--conf`` ...), and
  ``--tracker-config``.

:func:`inference_config` merges the checkpoint's settings, ``--tracker-config`` and the flags given into
one :class:`~ibntrack.config.InferenceConfig`; :func:`tracker_kwargs` spells it as the keywords of
:meth:`ibntrack.engine.infer.Tracker.from_checkpoint` (for the engine hooks and tune's network pass).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ibntrack.cliargs import non_negative_int, positive_int, unit_float
from ibntrack.config.inference import InferenceConfig
from ibntrack.runtime.options import RuntimeConfig

__all__ = [
    "CLI_DEFAULTS",
    "add_association_flags",
    "add_network_flags",
    "apply_threads",
    "flag_overrides",
    "inference_config",
    "tracker_kwargs",
]

CLI_DEFAULTS = InferenceConfig(runtime=RuntimeConfig(precision="auto"))
"""What the commands start from: the Python API's defaults, but the number format ``auto``."""

TRACKER_CONFIG_HELP = (
    "YAML of inference settings: sections runtime, stream, association, decode (ibntrack.config."
    "InferenceConfig), or the tracker settings `ibntrack tune --out FILE.yaml` writes; it overrides the "
    "checkpoint's settings, the flags override it"
)


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
        metavar="K",
        help="test-time BN adaptation: re-estimate the BatchNorm statistics (plain BN and the BN half of "
        "IBN) from the first K frames of each source, then freeze them; frame t is tracked with the "
        "statistics of frames 0..t, mixed with the training ones as a prior worth 8 frames. Combines with "
        "--sparsity; torch backend only (default 0 = off)",
    )
    g.add_argument("--no-fold", action="store_true", help="do not fold BN/IN into convolutions")
    g.add_argument("--device", help="cpu or cuda[:N] (default cpu)")
    g.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        help="network runtime (default torch); onnxruntime takes the .onnx written by `ibntrack export`",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
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
        help=TRACKER_CONFIG_HELP,
    )


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    """The :class:`~ibntrack.config.InferenceConfig` of a command's flags: the CLI defaults (``precision``
    ``auto``) → the checkpoint's calibrated tracker settings → ``--tracker-config`` → the flags given.

    The merged ``scene``, ``sparsity``, ``device`` and ``cmc`` are written back into ``args``, for the code
    that reads them from there (the engine hooks).

    Raises:
        SystemExit: a setting the backend does not take (``--adapt-bn`` or ``--precision bf16`` with an ONNX
            export ...), an unknown key or a wrong value in ``--tracker-config``.
        FileNotFoundError: ``--weights`` or ``--tracker-config`` does not exist. ValueError: unreadable
            weights (naming the file).
    """
    from ibntrack.config import load_inference_config
    from ibntrack.runtime import read_card

    overrides = flag_overrides(args)
    path = getattr(args, "tracker_config", None)
    try:
        cfg = load_inference_config(path, overrides, base=CLI_DEFAULTS)  # checks the flags and the file
    except ValueError as exc:
        raise SystemExit(f"ibntrack {args.command}: {exc}") from None
    card = read_card(cfg.runtime.weights or "", cfg.runtime.backend)  # ValueError: names the file
    cfg = load_inference_config(path, overrides, card=card, base=CLI_DEFAULTS)
    args.scene, args.sparsity, args.device = cfg.stream.scene, cfg.stream.sparsity, cfg.runtime.device
    if hasattr(args, "cmc"):
        args.cmc = cfg.stream.cmc
    return cfg


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads N``: PyTorch's CPU threads for this process."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{"section.key": value}`` of the flags given on the command line (the others are ``None``)."""
    given = {
        "runtime.weights": str(args.weights),
        "runtime.backend": args.backend,
        "runtime.device": args.device,
        "runtime.precision": args.precision,
        "runtime.fold": False if args.no_fold else None,
        "runtime.adapt_bn": args.adapt_bn,
        "stream.scene": args.scene,
        "stream.sparsity": args.sparsity,
        "stream.cmc": getattr(args, "cmc", None),
        "association.det_thresh": getattr(args, "conf", None),
        "association.low_thresh": getattr(args, "low_conf", None),
        "association.new_track_thresh": getattr(args, "new_conf", None),
        "association.track_buffer": getattr(args, "track_buffer", None),
        "association.use_embeddings": False if getattr(args, "no_embeddings", False) else None,
    }
    out = {key: value for key, value in given.items() if value is not None}
    if args.drift_threshold is not None:  # 0 disables the refresh
        out["stream.drift_threshold"] = args.drift_threshold or None
    return out


def tracker_kwargs(cfg: InferenceConfig, decode: bool = True) -> dict[str, Any]:
    """The :meth:`~ibntrack.engine.infer.Tracker.from_checkpoint` keywords of ``cfg`` but the weights,
    ``scene``, ``sparsity``, ``device`` and ``cmc`` (which the commands pass on their own); ``decode=False``
    leaves out ``conf_thresh`` and ``top_k`` (tune's network pass sets its own)."""
    rt = cfg.runtime
    kwargs: dict[str, Any] = {
        "backend": rt.backend,
        "precision": rt.precision,
        "fold": rt.fold,
        "adapt_bn": rt.adapt_bn,
        "adapt_bn_prior": rt.adapt_bn_prior,
        "drift_threshold": cfg.stream.drift_threshold,
        "tracker_config": cfg.association,
    }
    if decode:
        kwargs.update(conf_thresh=cfg.decode.conf_thresh, top_k=cfg.decode.top_k)
    return kwargs
