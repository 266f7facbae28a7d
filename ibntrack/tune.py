"""``ibntrack tune``: search the tracker thresholds on labelled sequences for the highest TrackEval HOTA.

The cross-domain user's workflow: a model trained elsewhere meets a new scene; label a few sequences of
it, tune the association thresholds there, and track the rest of the scene with them.

How it stays fast: the network runs **once** per sequence. Its detections (boxes, scores, classes,
embeddings, decoded at the lowest ``low_thresh`` of the search space) are cached; each trial only re-runs
the association (:class:`~ibntrack.tracking.tracker.MultiObjectTracker`) on the cache and scores the
result with TrackEval. Replaying the cache with settings ``P`` writes exactly the result file
``ibntrack track`` writes with ``P``: the network does not depend on the tracker settings (sparse IN and
drift refresh included), and detections under ``low_thresh`` are dropped by the tracker either way.

Search (Optuna's TPE sampler with a fixed seed and a fixed number of trials; the first trial is the
starting settings, so the best is never worse than them on the tuning sequences):

=========================== ================ ==========================================================
setting                     range            meaning (:class:`~ibntrack.tracking.tracker.TrackerConfig`)
=========================== ================ ==========================================================
det_thresh                  0.1 – 0.8        high-score detections
new_track_thresh            0.1 – 0.9        lowest score that starts a track
low_thresh                  0.05 – 0.5       second-pass detections (capped at det_thresh)
match_thresh_emb            0.2 – 0.8        appearance + motion cost limit
match_thresh_iou            0.5 – 0.95       IoU cost limit without appearance / first pass
match_thresh_iou_after_emb  0.3 – 0.9        IoU cost limit after the appearance step
second_match_thresh         0.3 – 0.9        IoU cost limit of the second pass
track_buffer                10 – 90 frames   how long a lost track can be re-found
=========================== ================ ==========================================================

Output: a copy of the checkpoint whose ``tracker`` entry holds the best settings (``--out tuned.pt``;
``ibntrack track --weights tuned.pt`` uses them), or a YAML file of settings (``--out tracker.yaml``) for
``ibntrack track --tracker-config tracker.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibntrack.structures import Detections
from ibntrack.tracking.tracker import MultiObjectTracker, TrackerConfig

__all__ = [
    "CachedSequence",
    "SEARCH_SPACE",
    "TuneResult",
    "cache_sequences",
    "load_tracker_settings",
    "replay",
    "score",
    "tune",
    "write_settings",
]

log = logging.getLogger(__name__)

#: name -> (low, high, kind) of every searched setting.
SEARCH_SPACE: dict[str, tuple[float, float, str]] = {
    "det_thresh": (0.1, 0.8, "float"),
    "new_track_thresh": (0.1, 0.9, "float"),
    "low_thresh": (0.05, 0.5, "float"),
    "match_thresh_emb": (0.2, 0.8, "float"),
    "match_thresh_iou": (0.5, 0.95, "float"),
    "match_thresh_iou_after_emb": (0.3, 0.9, "float"),
    "second_match_thresh": (0.3, 0.9, "float"),
    "track_buffer": (10, 90, "int"),
}
CACHE_THRESH = SEARCH_SPACE["low_thresh"][0]  # detections are cached from this score up


@dataclass
class CachedSequence:
    """The network's detections of one labelled sequence, ready to be re-associated.

    Attributes:
        name: sequence name (the result file is ``<name>.txt``).
        path: the sequence folder (with ``gt/gt.txt``).
        frame_rate: frames per second (scales ``track_buffer``).
        frames: ``(frame id, detections in frame pixels)`` in stream order.
        mot_class: per model class, the MOT class id written in column 8 (empty for one class).
        tracker_config: the settings ``ibntrack track`` would use with these weights (the checkpoint's
            ``tracker`` entry over the defaults).
    """

    name: str
    path: Path
    frame_rate: float
    frames: list[tuple[int, Detections]]
    mot_class: list[int] = field(default_factory=list)
    tracker_config: TrackerConfig | None = None


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        best: the best :class:`TrackerConfig`.
        best_hota: its combined HOTA on the tuning sequences (fraction).
        base: the starting settings, ``base_hota`` their HOTA.
        trials: ``(trial number, settings changed from base, HOTA)`` of every trial.
        seconds: wall time of the network pass and of the search.
    """

    best: TrackerConfig
    best_hota: float
    base: TrackerConfig
    base_hota: float
    trials: list[tuple[int, dict[str, Any], float]]
    seconds: dict[str, float]

    def changed(self) -> dict[str, Any]:
        """The settings in which ``best`` differs from ``base``."""
        b, s = dataclasses.asdict(self.best), dataclasses.asdict(self.base)
        return {k: v for k, v in b.items() if v != s[k]}


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("ibntrack tune needs Optuna: pip install 'ibntrack[tune]'") from exc
    return optuna


def _labelled_sequences(source: str | os.PathLike) -> list[Path]:
    """The sequence folders of ``source`` (a sequence or a root); each must have ``gt/gt.txt``."""
    from ibntrack.data.mot import load_sequences

    root = Path(source)
    if not root.exists():
        raise FileNotFoundError(f"tune: {root} does not exist")
    try:
        seqs = load_sequences(root, check_images=False)
    except FileNotFoundError as exc:
        raise ValueError(f"tune needs labelled MOTChallenge sequences: {exc}") from None
    missing = [str(s.path) for s in seqs if not s.has_gt]
    if missing:
        raise ValueError(
            "tune needs labelled sequences (gt/gt.txt) to score HOTA; no ground truth in: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    empty = [str(s.path) for s in seqs if not s.annotations]
    if empty:
        raise ValueError(f"tune: gt/gt.txt holds no (evaluated) boxes in: {', '.join(empty[:5])}")
    return [s.path for s in seqs]


def cache_sequences(
    source: str | os.PathLike,
    weights: str | os.PathLike,
    *,
    scene: str | Sequence[str] | None = None,
    sparsity: int | None = None,
    device: str = "cpu",
    max_frames: int | None = None,
    backend: str = "torch",
    progress: bool | None = None,
    **tracker_kwargs: Any,
) -> list[CachedSequence]:
    """Runs the network once over every labelled sequence of ``source`` (as ``ibntrack track`` would).

    The sparsity factor per sequence is chosen as :func:`ibntrack.engine.infer.track` chooses it (``scene``,
    else the sequence's ``sceneKeywords``; ``sparsity`` forces it). ``tracker_kwargs`` are the network
    settings of :meth:`~ibntrack.engine.infer.Tracker.from_checkpoint` (``precision``, ``fold``,
    ``adapt_bn``, ``drift_threshold`` ...): give the ones ``ibntrack track`` will run with
    (:func:`ibntrack.cli.flags.network_kwargs` of the same flags) so that the thresholds are tuned on the
    detections tracking sees.

    Raises:
        ValueError: a sequence without ground truth (before the network runs).
    """
    from tqdm import tqdm

    from ibntrack.data.mot import MOT_CLASS_IDS
    from ibntrack.engine.infer import Tracker
    from ibntrack.engine.sources import open_sources

    out = []
    for seq_dir in _labelled_sequences(source):
        for src in open_sources(seq_dir):
            live = scene if scene else (src.scene or None)
            trk = Tracker.from_checkpoint(
                weights,
                scene=live,
                device=device,
                sparsity=sparsity,
                backend=backend,
                frame_rate=src.frame_rate,
                conf_thresh=CACHE_THRESH,
                **tracker_kwargs,
            )
            frames = []
            bar = tqdm(
                total=src.length,
                desc=f"network {src.name}",
                unit="frame",
                disable=None if progress is None else not progress,
            )
            for frame_id, frame in src:
                if max_frames is not None and len(frames) >= max_frames:
                    break
                frames.append((int(frame_id), trk.detect(frame)))
                bar.update(1)
            bar.close()
            names = trk.class_names
            mot_class = [MOT_CLASS_IDS.get(n.lower(), -1) for n in names] if len(names) > 1 else []
            out.append(
                CachedSequence(src.name, Path(seq_dir), src.frame_rate, frames, mot_class, trk.tracker_config)
            )
    return out


def replay(seq: CachedSequence, config: TrackerConfig) -> list[tuple]:
    """The result rows ``ibntrack track`` would write for ``seq`` with tracker settings ``config``."""
    mot = MultiObjectTracker(config, frame_rate=seq.frame_rate)
    rows: list[tuple] = []
    for frame_id, d in seq.frames:
        keep = d.scores >= config.low_thresh
        if not keep.all():
            d = d.select(keep)
        for t in mot.update(d.boxes, d.scores, d.embeddings, d.classes):
            x1, y1, x2, y2 = (float(v) for v in t.box)
            cls = seq.mot_class[int(t.cls)] if seq.mot_class else -1
            rows.append((frame_id, t.track_id, x1, y1, x2 - x1, y2 - y1, float(t.score), cls))
    return rows


def score(seqs: Sequence[CachedSequence], config: TrackerConfig, workdir: str | os.PathLike) -> float:
    """Combined TrackEval HOTA (fraction) of ``config`` on the cached sequences."""
    from ibntrack.data.mot import write_results
    from ibntrack.eval.metrics import evaluate

    workdir = Path(workdir)
    for seq in seqs:
        write_results(workdir / f"{seq.name}.txt", replay(seq, config))
    report = evaluate([s.path for s in seqs], workdir)
    return float(report.combined["HOTA"])


def _check_params(params: Sequence[str] | None) -> tuple[str, ...]:
    if params is None:
        return tuple(SEARCH_SPACE)
    names = tuple(params)
    unknown = [p for p in names if p not in SEARCH_SPACE]
    if unknown or not names:
        raise ValueError(f"params must be a non-empty subset of {', '.join(SEARCH_SPACE)}; got {list(names)}")
    return names


def _suggest(trial: Any, base: TrackerConfig, params: Sequence[str] = tuple(SEARCH_SPACE)) -> TrackerConfig:
    values: dict[str, Any] = {}
    for name in params:
        lo, hi, kind = SEARCH_SPACE[name]
        if kind == "int":
            values[name] = trial.suggest_int(name, int(lo), int(hi))
        else:
            values[name] = trial.suggest_float(name, lo, hi)
    det = values.get("det_thresh", base.det_thresh)
    values["low_thresh"] = min(values.get("low_thresh", base.low_thresh), det)
    return base.replace(**values)


def _clipped(base: TrackerConfig, params: Sequence[str] = tuple(SEARCH_SPACE)) -> dict[str, Any]:
    """``base``'s searched settings clipped into the search space (the first, enqueued trial)."""
    out = {}
    for name in params:
        lo, hi, kind = SEARCH_SPACE[name]
        v = getattr(base, name)
        out[name] = int(min(max(v, lo), hi)) if kind == "int" else float(min(max(v, lo), hi))
    return out


def tune(
    seqs: Sequence[CachedSequence],
    base: TrackerConfig | None = None,
    *,
    trials: int = 50,
    seed: int = 0,
    params: Sequence[str] | None = None,
    callback: Callable[[int, float, float], None] | None = None,
) -> TuneResult:
    """Optuna (TPE, seeded) search of the tracker settings maximising combined HOTA on ``seqs``.

    Args:
        seqs: from :func:`cache_sequences`.
        base: the starting settings (the checkpoint's); the first trial evaluates them.
        trials: the fixed trial budget (>= 1).
        seed: sampler seed; the same seed, budget and cache give the same result.
        params: the settings searched (names of :data:`SEARCH_SPACE`; default all); the others keep
            ``base``'s values.
        callback: called after each trial with ``(trial number, HOTA, best HOTA so far)``.
    """
    optuna = _import_optuna()
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1, got {trials!r}")
    if not seqs:
        raise ValueError("tune: no sequences to tune on")
    base = base or TrackerConfig()
    names = _check_params(params)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ibntrack-tune-") as tmp:
        base_hota = score(seqs, base, Path(tmp) / "base")
        history: list[tuple[int, dict[str, Any], float]] = []

        def objective(trial: Any) -> float:
            config = _suggest(trial, base, names)
            hota = score(seqs, config, Path(tmp) / f"t{trial.number}")
            changed = {k: v for k, v in dataclasses.asdict(config).items() if v != getattr(base, k)}
            history.append((trial.number, changed, hota))
            if callback is not None:
                callback(trial.number, hota, max(h for _, _, h in history))
            return hota

        sampler = optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.enqueue_trial(_clipped(base, names))
        study.optimize(objective, n_trials=trials, n_jobs=1)
    best_trial = study.best_trial
    best = _suggest(optuna.trial.FixedTrial(best_trial.params), base, names)
    best_hota = float(best_trial.value)
    if base_hota >= best_hota:  # the clipped first trial can differ from base; never return worse
        best, best_hota = base, base_hota
    return TuneResult(best, best_hota, base, base_hota, history, {"search": time.perf_counter() - t0})


# ------------------------------------------------------------------------------------- settings files


def _round(config: TrackerConfig) -> dict[str, Any]:
    """The searched settings and every other setting that differs from the defaults, rounded.

    Like the shipped checkpoint's ``tracker`` entry: overrides on top of :class:`TrackerConfig`'s defaults,
    so a file stays readable when the tracker gains new settings.
    """
    default = dataclasses.asdict(TrackerConfig())
    return {
        k: (round(v, 4) if isinstance(v, float) else v)
        for k, v in dataclasses.asdict(config).items()
        if k in SEARCH_SPACE or v != default.get(k)
    }


def write_settings(
    out: str | os.PathLike, config: TrackerConfig, weights: str | os.PathLike, note: str = ""
) -> Path:
    """Writes ``config`` as a checkpoint copy (``.pt``: its ``tracker`` entry) or a YAML file.

    Raises:
        ValueError: ``out`` has another suffix, or is the checkpoint itself.
    """
    from ibntrack.fileio import atomic_write_text

    out = Path(out)
    settings = _round(config)
    if out.suffix == ".pt":
        from ibntrack.nn.checkpoint import load_checkpoint, save_checkpoint

        if out.resolve() == Path(weights).resolve():
            raise ValueError(f"--out {out} is the checkpoint itself; write the tuned copy to another file")
        ckpt = load_checkpoint(weights)
        ckpt["tracker"] = settings
        return save_checkpoint(out, ckpt)
    if out.suffix in (".yaml", ".yml"):
        import yaml

        header = "".join(f"# {line}\n" for line in note.splitlines())
        body = yaml.safe_dump({"tracker": settings}, sort_keys=False)
        return atomic_write_text(out, header + body)
    raise ValueError(f"--out {out}: give a .pt (a tuned copy of the checkpoint) or a .yaml file")


def load_tracker_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The tracker settings of a YAML file (``tracker: {det_thresh: 0.4, ...}`` as :func:`write_settings`
    writes it, the bare mapping, or the ``association`` section of an inference config), read by
    :func:`ibntrack.config.load_inference_config`.

    Returns:
        ``{field: value}`` of every :class:`TrackerConfig` field (the file's over the defaults).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not YAML, not a mapping, an unknown key or an invalid value (file and key named).
    """
    from ibntrack.config import load_inference_config

    association = load_inference_config(path).association
    return dataclasses.asdict(association if association is not None else TrackerConfig())
