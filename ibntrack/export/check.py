"""The export check: ONNX Runtime against the torch backend, on a refresh frame and a cached frame."""

from __future__ import annotations

from pathlib import Path

import torch

from ibntrack.nn.model import TrackerNet
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.runtime.base import MAP_NAMES
from ibntrack.runtime.ort import OnnxBackend
from ibntrack.runtime.torch import TorchBackend

__all__ = ["CHECK_SEED", "CHECK_SPARSITY", "CHECK_TOL", "check_export"]

CHECK_TOL = 1e-3  # export check: |onnx - torch| <= CHECK_TOL * (1 + |torch|) element-wise
CHECK_SEED = 0
CHECK_SPARSITY = 2  # frame 0 runs the refresh graph, frame 1 the cached graph


def check_export(model: TrackerNet, path: Path, input_size: tuple[int, int]) -> float:
    """Max ``|onnx − torch|`` over a refresh frame and a cached frame at ``s = 2``; raises past tolerance.

    Both backends stream two seeded random frames; after the refresh frame the IN statistics the refresh
    graph handed over must equal the torch layers' cache.

    Raises:
        ValueError: naming the output, the frame and the difference, past :data:`CHECK_TOL`.
    """
    h, w = input_size
    gen = torch.Generator().manual_seed(CHECK_SEED)
    frames = [torch.randn(1, 3, h, w, generator=gen) for _ in range(2)]
    reference = TorchBackend(model, schedule=RefreshSchedule(CHECK_SPARSITY))
    runner = OnnxBackend(path, schedule=RefreshSchedule(CHECK_SPARSITY))
    worst = 0.0
    for t, frame in enumerate(frames):
        ref, got = reference(frame), runner(frame)
        for name in MAP_NAMES:
            err = (got[name] - ref[name]).abs()
            worst = max(worst, float(err.max()))
            bad = err > CHECK_TOL * (1.0 + ref[name].abs())
            if bool(bad.any()):
                kind = "refresh" if t == 0 else "cached"
                raise ValueError(
                    f"ONNX check failed: output {name!r} on frame {t} ({kind}) differs from PyTorch by "
                    f"up to {float(err.max()):.3g} (tolerance {CHECK_TOL}·(1 + |torch|))"
                )
        if t == 0:  # the statistics the refresh graph handed over must be the torch layers' cache
            pairs = zip(reference.get_stream_state(), runner.get_stream_state(), strict=True)
            for ref_state, got_state in pairs:
                for a, b in ((ref_state.mean, got_state.mean), (ref_state.var, got_state.var)):
                    if a is None or b is None:
                        raise ValueError("ONNX check failed: a refresh frame left no IN statistics")
                    err_stats = float((a - b).abs().max()) if a.numel() else 0.0
                    worst = max(worst, err_stats)
                    if err_stats > CHECK_TOL * (1.0 + float(a.abs().max())):
                        raise ValueError(f"ONNX check failed: IN statistics differ by {err_stats:.3g}")
    return worst
