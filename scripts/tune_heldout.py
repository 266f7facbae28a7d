"""Held-out gain of ``ibntrack tune`` (docs/TUNING.md): tune on one winter sequence, score on others.

The network runs once per sequence (``cache_sequences``); every tuned setting is then scored on the
held-out sequences by replaying the association on their cache, which writes the same result files as
``ibntrack track`` with those settings (tests/test_tune.py::test_replay_equals_track).

    python scripts/tune_heldout.py --data runs/tune_winter --seeds 0 1 2 3 4 --trials 100
(``--data`` holds ``tune/`` and ``test/`` as written by scripts/tune_winter.sh.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ibntrack.nn.checkpoint import load_checkpoint
from ibntrack.tracking import TrackerConfig
from ibntrack.tune import cache_sequences, score, tune

WEIGHTS = "ibntrack/assets/synth_summer_resnet18_ibn.pt"
SPACES = {
    "all 8 settings": None,
    "4 score thresholds + buffer": ["det_thresh", "new_track_thresh", "low_thresh", "track_buffer"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("runs/tune_winter"))
    ap.add_argument("--weights", default=WEIGHTS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--trials", type=int, default=100)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tune_seqs = cache_sequences(args.data / "tune", args.weights, progress=False)
    test_seqs = cache_sequences(args.data / "test", args.weights, progress=False)
    print(f"network pass: {time.perf_counter() - t0:.0f} s")
    base = TrackerConfig(**dict(load_checkpoint(args.weights).get("tracker") or {}))
    with tempfile.TemporaryDirectory() as tmp:

        def held_out(cfg: TrackerConfig) -> tuple[float, dict[str, float]]:
            out = Path(tmp) / str(time.perf_counter_ns())
            total = score(test_seqs, cfg, out)
            per = {s.name: score([s], cfg, out / s.name) for s in test_seqs}
            return total, per

        b_all, b_per = held_out(base)
        names = [s.name for s in test_seqs]
        print(f"| search | seed | tuning seq HOTA | held-out HOTA (combined) | {' | '.join(names)} |")
        print("|---|---|---|---|" + "---|" * len(names))
        print(f"| shipped settings | - | {100 * score(tune_seqs, base, Path(tmp) / 'b'):.1f} | "
              f"{100 * b_all:.1f} | " + " | ".join(f"{100 * b_per[n]:.1f}" for n in names) + " |")
        for label, params in SPACES.items():
            gains = []
            for seed in args.seeds:
                t1 = time.perf_counter()
                r = tune(tune_seqs, base, trials=args.trials, seed=seed, params=params)
                h_all, h_per = held_out(r.best)
                gains.append(h_all - b_all)
                print(f"| {label} | {seed} | {100 * r.best_hota:.1f} | {100 * h_all:.1f} | "
                      + " | ".join(f"{100 * h_per[n]:.1f}" for n in names)
                      + f" |  <!-- {time.perf_counter() - t1:.0f} s -->")
            print(f"<!-- {label}: held-out gain mean {100 * statistics.mean(gains):+.1f}, "
                  f"min {100 * min(gains):+.1f}, max {100 * max(gains):+.1f} -->")


if __name__ == "__main__":
    main()
