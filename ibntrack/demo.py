"""``ibntrack demo``: the main job on the embedded default, with nothing to fetch.

1. synthesise a sequence of the synthetic world in an unseen domain (winter by default);
2. track it with the small IBN model shipped in the package (trained on synthetic *summer* only) — the
   sparsity factor comes from the relevance of the sequence's scene keywords to the training scene;
3. score it with TrackEval and print the table;
4. write the annotated H.264 video.
"""

from __future__ import annotations

import logging
import time
from importlib import resources
from pathlib import Path

__all__ = ["run_demo", "shipped_weights", "DEMO_SIZE", "DEMO_OBJECTS"]

log = logging.getLogger(__name__)

DEMO_SIZE = (640, 352)
"""Frame size (W, H) of the demo sequence."""
DEMO_OBJECTS = 12
"""Objects in the demo scene at a time."""


def shipped_weights() -> Path:
    """Path of the model shipped inside the package (``ibntrack/assets/synth_summer_resnet18_ibn.pt``)."""
    path = Path(str(resources.files("ibntrack") / "assets" / "synth_summer_resnet18_ibn.pt"))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the shipped model is missing from this installation; pass --weights"
        )
    return path


def run_demo(
    out: Path = Path("runs/demo"),
    domain: str = "winter",
    frames: int = 150,
    seed: int = 7,
    weights: Path | None = None,
    device: str = "cpu",
    save_video: bool = True,
) -> int:
    """Runs the demo; returns 0. Prints the metrics table and where the outputs are."""
    from ibntrack.data.synth import generate_sequence
    from ibntrack.engine.infer import track
    from ibntrack.eval.metrics import evaluate

    weights = Path(weights) if weights else shipped_weights()
    out = Path(out)
    t0 = time.perf_counter()
    print(f"[1/3] generating a synthetic '{domain}' sequence: {frames} frames, {DEMO_SIZE[0]}x{DEMO_SIZE[1]}")
    seq = generate_sequence(
        out / "data",
        domain=domain,
        frames=frames,
        objects=DEMO_OBJECTS,
        size=DEMO_SIZE,
        seed=seed,
        name=f"synth-{domain}-{seed}",
    )
    print(f"[2/3] tracking {seq} with {weights.name}")
    summaries = track(seq, weights, out_dir=out / "tracks", save_video=save_video, device=device)
    s = summaries[0]
    print(
        f"      {s.frames} frames, {s.tracks} track ids, {s.fps:.1f} frames/s, "
        f"sparsity factor s={s.sparsity}, IN refreshed on {100 * s.refresh_fraction:.0f}% of frames; "
        "mean ms: " + ", ".join(f"{k} {v:.1f}" for k, v in s.mean_ms.items())
    )
    print("[3/3] TrackEval metrics")
    report = evaluate(seq, out / "tracks")
    print(report.to_table())
    report.to_json(out / "metrics.json")
    print(f"results: {s.result_file}")
    if s.video_file:
        print(f"video:   {s.video_file}")
    print(f"metrics: {out / 'metrics.json'}   ({time.perf_counter() - t0:.0f} s in all)")
    return 0
