"""``ibntrack tune``: the cached replay equals ``ibntrack track``; the search is seeded and finds
thresholds a hand-made case needs; settings files round-trip; no ground truth is a clear error."""

import shutil

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("optuna")

from ibntrack.cli import main  # noqa: E402
from ibntrack.data.mot import load_sequence, read_results  # noqa: E402
from ibntrack.data.synth import generate_sequence  # noqa: E402
from ibntrack.nn.checkpoint import load_checkpoint  # noqa: E402
from ibntrack.structures import Detections  # noqa: E402
from ibntrack.tracking import TrackerConfig  # noqa: E402
from ibntrack.tune import (  # noqa: E402
    CACHE_THRESH,
    SEARCH_SPACE,
    CachedSequence,
    cache_sequences,
    load_tracker_settings,
    replay,
    tune,
    write_settings,
)
from tests.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_tiny_checkpoint(path, 0.5, tracker={"det_thresh": 0.55, "new_track_thresh": 0.6})


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    return generate_sequence(
        root, "winter", frames=6, objects=3, size=(96, 64), seed=2, name="w", classes=("pedestrian",)
    )


def test_replay_equals_track(ckpt, seq, tmp_path):
    settings = {"det_thresh": 0.6, "low_thresh": 0.3, "new_track_thresh": 0.65, "track_buffer": 5}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"tracker": settings}))
    out = tmp_path / "trk"
    assert main(["track", str(seq), "--weights", str(ckpt), "--out", str(out), "--precision", "fp32",
                 "--tracker-config", str(tmp_path / "t.yaml")]) == 0  # fmt: skip  (replay runs fp32)
    tracked = read_results(out / "w.txt")
    assert len(tracked) > 0
    (cached,) = cache_sequences(seq, ckpt, progress=False)
    assert cached.tracker_config == TrackerConfig(det_thresh=0.55, new_track_thresh=0.6)  # the checkpoint's
    base = TrackerConfig(**{**load_checkpoint(ckpt)["tracker"], **settings})
    rows = np.array([r[:7] for r in replay(cached, base)], np.float64)
    np.testing.assert_allclose(rows, tracked, atol=0.006)  # results files keep 2 decimals


def _fake_cache(seq_dir, score: float) -> CachedSequence:
    """Detections = the ground-truth boxes, all scoring ``score``, one embedding per identity."""
    s = load_sequence(seq_dir)
    frames = []
    for f in range(1, s.length + 1):
        a = s.get(f)
        emb = np.eye(64, dtype=np.float32)[a.ids % 64]
        frames.append((f, Detections(a.boxes, np.full(len(a), score), a.classes, emb)))
    return CachedSequence(s.name, s.path, s.frame_rate, frames)


def test_search_finds_thresholds_under_the_scores(seq):
    cache = [_fake_cache(seq, 0.5)]
    base = TrackerConfig(det_thresh=0.9, low_thresh=0.5, new_track_thresh=0.9)  # tracks nothing
    result = tune(cache, base, trials=25, seed=0)
    assert result.base_hota == 0.0
    assert result.best_hota > 0.9  # perfect boxes and identities once det/new thresholds are below 0.5
    assert result.best.det_thresh <= 0.5 and result.best.new_track_thresh <= 0.5
    assert len(result.trials) == 25 and result.trials[0][2] == 0.0  # first trial: the base (clipped)
    again = tune(cache, base, trials=25, seed=0)
    assert again.best == result.best and [t[2] for t in again.trials] == [t[2] for t in result.trials]


def test_settings_files_round_trip(ckpt, tmp_path):
    best = TrackerConfig(det_thresh=0.42, new_track_thresh=0.47, track_buffer=12)
    pt = write_settings(tmp_path / "tuned.pt", best, ckpt)
    tuned = load_checkpoint(pt)
    assert tuned["tracker"]["det_thresh"] == 0.42 and tuned["tracker"]["track_buffer"] == 12
    assert torch.equal(
        tuned["model"]["backbone.conv1.weight"], load_checkpoint(ckpt)["model"]["backbone.conv1.weight"]
    )
    from ibntrack.engine.infer import Tracker

    assert Tracker.from_checkpoint(pt).tracker_config == best
    y = write_settings(tmp_path / "tracker.yaml", best, ckpt, note="tuned on w")
    assert y.read_text().startswith("# tuned on w\n")
    assert TrackerConfig(**load_tracker_settings(y)) == best
    with pytest.raises(ValueError, match="itself"):
        write_settings(ckpt, best, ckpt)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: {det_thresh: 0.5, det_thres: 0.4}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key association\.'det_thres'"):
        load_tracker_settings(bad)
    bad.write_text("det_thresh: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: invalid association: det_thresh"):
        load_tracker_settings(bad)


def test_cli_tune_and_no_ground_truth(ckpt, seq, tmp_path, capsys):
    out = tmp_path / "tuned.yaml"
    assert main(["tune", str(seq), "--weights", str(ckpt), "--out", str(out), "--trials", "2"]) == 0
    printed = capsys.readouterr().out
    assert "network pass: 1 sequence(s), 6 frames" in printed and f"wrote {out}" in printed
    TrackerConfig(**load_tracker_settings(out))
    nogt = tmp_path / "nogt"
    shutil.copytree(seq, nogt)
    shutil.rmtree(nogt / "gt")
    assert main(["tune", str(nogt), "--weights", str(ckpt), "--out", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert "labelled sequences (gt/gt.txt)" in err and "nogt" in err
    assert main(["tune", str(seq), "--weights", str(ckpt), "--out", str(tmp_path / "x.json")]) == 2
    assert "give a .pt" in capsys.readouterr().err


def test_params_subset_keeps_the_rest(seq):
    cache = [_fake_cache(seq, 0.5)]
    base = TrackerConfig(det_thresh=0.9, low_thresh=0.5, new_track_thresh=0.9, match_thresh_emb=0.33)
    result = tune(cache, base, trials=12, seed=1, params=["det_thresh", "new_track_thresh"])
    assert result.best.match_thresh_emb == 0.33 and result.best.track_buffer == base.track_buffer
    assert all(
        set(changed) <= {"det_thresh", "new_track_thresh", "low_thresh"} for _, changed, _ in result.trials
    )
    with pytest.raises(ValueError, match="params must be a non-empty subset"):
        tune(cache, base, trials=1, params=["det_threshold"])


def test_settings_files_hold_overrides_only(ckpt, tmp_path):
    y = write_settings(tmp_path / "t.yaml", TrackerConfig(det_thresh=0.42, gating=False), ckpt)
    written = yaml.safe_load(y.read_text())["tracker"]
    assert set(written) == {*SEARCH_SPACE, "gating"}
    assert written["gating"] is False and written["det_thresh"] == 0.42


# ------------------------------------------------------------------ tune and track: one network setting
NETWORK_FLAGS = [[], ["--precision", "bf16", "--no-fold", "--sparsity", "2"], ["--adapt-bn", "2"]]


@pytest.mark.parametrize("flags", NETWORK_FLAGS)
def test_tune_caches_what_track_detects(ckpt, seq, tmp_path, flags):
    """The same flags give tune's network pass and track's tracker the same number format and settings
    (tune used to run fp32 while track defaults to auto), so the cached detections are track's, bit for
    bit, and tune starts from track's thresholds."""
    from ibntrack.cli import build_parser
    from ibntrack.cli.flags import inference_config
    from ibntrack.cli.track import _tracker_kwargs
    from ibntrack.cli.tune import network_pass
    from ibntrack.data.mot import load_sequence
    from ibntrack.engine.infer import Tracker
    from ibntrack.engine.sources import open_sources

    settings = tmp_path / "t.yaml"
    settings.write_text(yaml.safe_dump({"tracker": {"det_thresh": 0.45, "track_buffer": 7}}))
    common = ["--weights", str(ckpt), "--tracker-config", str(settings), *flags]
    parser = build_parser()
    t_args = parser.parse_args(["track", str(seq), "--out", str(tmp_path / "o"), *common])
    u_args = parser.parse_args(["tune", str(seq), "--out", str(tmp_path / "u.yaml"), *common])
    t_cfg, u_cfg = inference_config(t_args), inference_config(u_args)
    assert u_cfg == t_cfg  # one config: runtime, stream, association, decode
    assert flags or t_cfg.runtime.precision == "auto"  # both default to track's number format
    (cached,) = network_pass(u_args)
    (src,) = open_sources(seq)
    kwargs = dict(scene=src.scene, sparsity=t_args.sparsity, **_tracker_kwargs(t_args))  # as track() does
    trk = Tracker.from_checkpoint(ckpt, **kwargs)
    probe = Tracker.from_checkpoint(ckpt, **{**kwargs, "conf_thresh": CACHE_THRESH})  # tune's cut
    assert u_cfg.association == trk.tracker_config  # checkpoint, then the YAML file
    assert cached.tracker_config == trk.tracker_config
    assert trk.tracker_config.det_thresh == 0.45 and trk.tracker_config.track_buffer == 7
    assert len(cached.frames) == load_sequence(seq).length
    for (_, dets), (_, frame) in zip(cached.frames, src, strict=True):
        mine = probe.detect(frame)
        np.testing.assert_array_equal(dets.boxes, mine.boxes)  # bit for bit: the same number format
        np.testing.assert_array_equal(dets.scores, mine.scores)
