"""``ibntrack demo``: the main job on the embedded default, with nothing to fetch.

1. synthesise a sequence of the synthetic world in an unseen domain (winter by default);
2. track it with the small IBN model shipped in the package (trained on synthetic *summer* only) — the
   sparsity factor comes from the relevance of the sequence's scene keywords to the training scene —
   and with its plain-BN twin (same data, budget and seed), when the package ships one;
3. score both with TrackEval and print their metrics side by side;
4. write the annotated H.264 video of the IBN model.
"""

from __future__ import annotations

import logging
import time
from importlib import resources
from pathlib import Path

__all__ = ["run_demo", "shipped_weights", "DEMO_SIZE", "DEMO_OBJECTS", "SHIPPED"]

log = logging.getLogger(__name__)

DEMO_SIZE = (640, 352)
"""Frame size (W, H) of the demo sequence."""
DEMO_OBJECTS = 12
"""Objects in the demo scene at a time."""


SHIPPED = {
    "ibn": "synth_summer_resnet18_ibn.pt",
    "bn": "synth_summer_resnet18_bn.pt",
    "real": "real_vtest_resnet18_ibn.pt",
}
"""The models in ``ibntrack/assets``: the synthetic-summer IBN-a model and its plain-BN twin (same data,
budget, seed), and ``real``: the IBN-a model self-trained on real pedestrian footage by ``ibntrack adapt``
(the default of ``ibntrack track``)."""


def shipped_weights(kind: str = "ibn") -> Path:
    """Path of a model shipped inside the package: ``"ibn"`` (the default), its plain-BN twin ``"bn"``, or
    ``"real"`` (adapted to real pedestrian footage).

    Raises:
        FileNotFoundError: the file is not in this installation.
    """
    if kind not in SHIPPED:
        raise ValueError(f"kind must be one of {sorted(SHIPPED)}, got {kind!r}")
    path = Path(str(resources.files("ibntrack") / "assets" / SHIPPED[kind]))
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
    baseline: Path | None = None,
) -> int:
    """Runs the demo; returns 0. Prints the metrics side by side and where the outputs are.

    Args:
        weights: the model to show (default: the shipped IBN model).
        baseline: a model to compare with (default: the shipped BN twin when ``weights`` is not given
            and the package has it; none otherwise).
    """
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
    models = [("IBN" if weights == _shipped_or_none("ibn") else weights.stem, weights)]
    if baseline is None and weights == _shipped_or_none("ibn"):
        baseline = _shipped_or_none("bn")
    if baseline is not None:
        models.append(
            ("BN twin" if Path(baseline) == _shipped_or_none("bn") else Path(baseline).stem, Path(baseline))
        )
    rows = []
    for k, (label, path) in enumerate(models):
        print(f"[2/3] tracking {seq.name} with {label} ({path.name})")
        tracks = out / "tracks" if k == 0 else out / f"tracks-{label.replace(' ', '_').lower()}"
        [s] = track(seq, path, out_dir=tracks, save_video=save_video and k == 0, device=device)
        norm = (
            f"sparsity factor s={s.sparsity}, IN refreshed on {100 * s.refresh_fraction:.0f}% of frames"
            if _has_instance_norm(path)
            else "plain BN (no IN layers)"
        )
        print(
            f"      {s.frames} frames, {s.tracks} track ids, {s.fps:.1f} frames/s, {norm}; "
            "mean ms: " + ", ".join(f"{k} {v:.1f}" for k, v in s.mean_ms.items())
        )
        report = evaluate(seq, tracks)
        if k == 0:
            print("[3/3] TrackEval metrics")
            print(report.to_table())
            report.to_json(out / "metrics.json")
            first = s
        else:
            report.to_json(out / f"metrics-{label.replace(' ', '_').lower()}.json")
        rows.append((label, report.combined, s.tracks))
    if len(rows) > 1:
        print(_side_by_side(rows, _true_identities(seq)))
    print(f"results: {first.result_file}")
    if first.video_file:
        print(f"video:   {first.video_file}")
    print(f"metrics: {out / 'metrics.json'}   ({time.perf_counter() - t0:.0f} s in all)")
    return 0


def _has_instance_norm(weights: Path) -> bool:
    from ibntrack.nn.checkpoint import load_checkpoint
    from ibntrack.nn.model import ModelConfig

    return ModelConfig.from_dict(load_checkpoint(weights)["model_config"]).ibn_placement is not None


def _shipped_or_none(kind: str) -> Path | None:
    try:
        return shipped_weights(kind)
    except FileNotFoundError:
        return None


def _true_identities(seq: Path) -> int:
    from ibntrack.data.motio import read_gt

    gt = read_gt(seq / "gt" / "gt.txt")
    return len({int(i) for i in gt[:, 1]})


def _side_by_side(rows, identities: int) -> str:
    """The models' combined metrics as one table (percentages; ids against the true identities)."""
    lines = [f"{'model':<12}{'HOTA':>7}{'MOTA':>7}{'IDF1':>7}{'DetA':>7}{'AssA':>7}{'IDSW':>6}{'ids':>9}"]
    for label, m, ids in rows:
        lines.append(
            f"{label:<12}{100 * m['HOTA']:>7.1f}{100 * m['MOTA']:>7.1f}{100 * m['IDF1']:>7.1f}"
            f"{100 * m['DetA']:>7.1f}{100 * m['AssA']:>7.1f}{int(m['IDSW']):>6}{f'{ids}/{identities}':>9}"
        )
    return "\n".join(lines)
