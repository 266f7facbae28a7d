"""The failure cases a hostile but fair user found (issue 17): one test per row of docs/RELIABILITY.md.

Each test reproduces the reported situation and checks what now happens instead: a clear error naming the
file, key or argument before any work, or finalised results with the situation stated.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ibntrack.cli import main
from ibntrack.config import load_config
from ibntrack.data.motio import read_results
from ibntrack.data.synth import generate_sequence
from ibntrack.engine.infer import Tracker, track
from ibntrack.engine.sources import SourceError, open_sources
from ibntrack.fileio import OutputError, atomic_write_text, remove_stale_temps, temp_path
from tests.tiny import save_tiny_checkpoint

INPUT = (64, 96)  # (H, W)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny checkpoint whose heatmap fires everywhere, so every frame yields tracks."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", 3.0)


@pytest.fixture()
def seq(tmp_path) -> Path:
    return generate_sequence(tmp_path / "data", domain="summer", frames=6, objects=3, size=(96, 64), seed=1)


# ------------------------------------------------------------------------------------ frames and files


def test_missing_image_keeps_frame_numbers_from_file_names(seq, ckpt, tmp_path, caplog):
    (seq / "img1" / "000003.jpg").unlink()
    [src] = open_sources(seq)
    assert src.frame_ids == [1, 2, 4, 5, 6] and src.missing == [3]
    assert "1 frame(s) missing" in caplog.text
    [summary] = track(seq, ckpt, out_dir=tmp_path / "out")
    assert summary.missing_frames == 1 and summary.frames == 5
    frames = set(read_results(summary.result_file)[:, 0].astype(int))
    assert frames == {1, 2, 4, 5, 6}, "results keep the file names' frame numbers"


def test_duplicate_frame_number_is_an_error(seq):
    img = cv2.imread(str(seq / "img1" / "000002.jpg"))
    cv2.imwrite(str(seq / "img1" / "000002.png"), img)
    with pytest.raises(SourceError, match=r"000002\.jpg and 000002\.png both hold frame 2"):
        open_sources(seq)


def test_odd_sized_training_image_is_an_error_naming_the_file(tmp_path):
    from ibntrack.data.dataset import MOTDataset
    from ibntrack.data.mot import load_sequences
    from ibntrack.data.motio import MOTFormatError

    seq = generate_sequence(
        tmp_path, "summer", frames=3, objects=2, size=(96, 64), seed=0, classes=("pedestrian",)
    )
    odd = seq / "img1" / "000002.jpg"
    cv2.imwrite(str(odd), np.zeros((32, 48, 3), np.uint8))
    ds = MOTDataset(load_sequences(tmp_path), input_size=INPUT, augment=False)
    frames = [frame for _, frame in ds.samples]
    with pytest.raises(MOTFormatError, match=r"000002\.jpg: the image is 48x32 but sequence .* is 96x64"):
        ds.load(frames.index(2))


@pytest.mark.parametrize("field", ["name", "sceneKeywords"])
def test_percent_in_seqinfo_is_read_literally(seq, field):
    ini = seq / "seqinfo.ini"
    text = ini.read_text()
    if field == "name":
        text = text.replace(f"name={seq.name}", "name=cam_100%")
    else:
        text = re.sub(r"sceneKeywords=.*", "sceneKeywords=summer,100%humid", text)
    ini.write_text(text)
    [src] = open_sources(seq)
    assert src.name == "cam_100%" if field == "name" else "100%humid" in src.scene


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t.replace("[Sequence]\n", ""), "not a valid seqinfo.ini"),
        (lambda t: t + "frameRate=25\n", "not a valid seqinfo.ini"),  # duplicate key
    ],
    ids=["no-section-header", "duplicate-key"],
)
def test_broken_seqinfo_is_a_clear_error_in_eval_and_track(seq, tmp_path, mutate, match, capsys):
    ini = seq / "seqinfo.ini"
    ini.write_text(mutate(ini.read_text()))
    results = tmp_path / "res"
    results.mkdir()
    (results / f"{seq.name}.txt").write_text("1,1,0,0,5,5,1,-1,-1,-1\n")
    assert main(["eval", "--gt", str(seq), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert match in err and str(ini) in err and "Traceback" not in err
    with pytest.raises(SourceError, match=match):
        open_sources(seq)


# --------------------------------------------------------------------------------------------- outputs


def test_out_is_a_file_fails_before_any_frame(seq, ckpt, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.txt"
    out.write_text("not a folder")
    calls = []
    monkeypatch.setattr(Tracker, "update", lambda self, frame: calls.append(1) or [])
    code = main(["track", str(seq), "--weights", str(ckpt), "--out", str(out)])
    assert code == 2 and calls == [], "no frame may be tracked before the output is known to work"
    assert "is a file, not a folder" in capsys.readouterr().err


def test_result_name_is_a_folder_fails_before_any_frame(seq, ckpt, tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / f"{seq.name}.txt").mkdir(parents=True)
    calls = []
    monkeypatch.setattr(Tracker, "update", lambda self, frame: calls.append(1) or [])
    with pytest.raises(OutputError, match=r"\.txt is a folder"):
        track(seq, ckpt, out_dir=out)
    assert calls == []


def test_read_only_output_folder_fails_before_work(tmp_path, monkeypatch):
    from ibntrack import fileio

    real_open = os.open

    def deny(path, flags, mode=0o777, **kw):  # what a read-only folder does (root ignores chmod)
        if str(path).startswith(str(tmp_path / "ro")):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode, **kw)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(fileio.os, "open", deny)
    with pytest.raises(OutputError, match="is not writable"):
        fileio.check_writable_dir(tmp_path / "ro", "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_for_real(tmp_path):
    from ibntrack.fileio import check_writable_dir

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_writable_dir(ro, "--out")
    finally:
        ro.chmod(0o755)


def test_eval_json_to_a_folder_fails_before_scoring(seq, tmp_path, capsys, monkeypatch):
    from ibntrack.eval import metrics

    monkeypatch.setattr(metrics, "evaluate", lambda *a, **k: pytest.fail("scored before checking --json"))
    (tmp_path / "m.json").mkdir()
    code = main(["eval", "--gt", str(seq), "--results", str(tmp_path), "--json", str(tmp_path / "m.json")])
    assert code == 2 and "--json" in capsys.readouterr().err


def test_synth_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "f"), "--frames", "2", "--size", "64x64"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_train_out_dir_is_a_file_fails_before_data_loading(tmp_path, monkeypatch):
    from ibntrack.training import train as train_mod

    (tmp_path / "out").write_text("x")
    monkeypatch.setattr(train_mod, "load_data", lambda *a: pytest.fail("loaded data before the check"))
    cfg = load_config(None, ["train.device=cpu", f"train.out_dir={tmp_path / 'out'}", "data.train=[x]"])
    with pytest.raises(OutputError, match=r"train.out_dir \(--out\): .* is a file"):
        train_mod.fit(cfg)


# ------------------------------------------------------------------------------------ interrupts, temps


def test_keyboard_interrupt_keeps_the_frames_tracked(seq, ckpt, tmp_path, monkeypatch):
    real_update = Tracker.update
    seen = []

    def update(self, frame):
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(1)
        return real_update(self, frame)

    monkeypatch.setattr(Tracker, "update", update)
    [summary] = track(seq, ckpt, out_dir=tmp_path / "out", save_json=True, save_video=True)
    assert summary.interrupted and summary.frames == 3
    rows = read_results(tmp_path / "out" / f"{seq.name}.txt")
    assert set(rows[:, 0].astype(int)) == {1, 2, 3}
    assert len((tmp_path / "out" / f"{seq.name}.jsonl").read_text().splitlines()) == 3
    cap = cv2.VideoCapture(str(tmp_path / "out" / f"{seq.name}.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "temporary files left"


def test_sigterm_during_track_finalises_results(seq, ckpt, tmp_path):
    """A real ``ibntrack track`` process, slowed down, stopped by SIGTERM mid-sequence."""
    for i in range(7, 40):  # more frames, so the signal lands mid-way
        (seq / "img1" / f"{i:06d}.jpg").write_bytes((seq / "img1" / "000001.jpg").read_bytes())
    script = textwrap.dedent(
        f"""
        import sys, time
        from ibntrack.engine.infer import Tracker
        real = Tracker.update
        def slow(self, frame):
            out = real(self, frame)
            print("frame", flush=True)
            time.sleep(0.1)
            return out
        Tracker.update = slow
        from ibntrack.cli import main
        sys.exit(main(["track", {str(seq)!r}, "--weights", {str(ckpt)!r}, "--out", {str(tmp_path / "o")!r}]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    for _ in range(3):
        assert proc.stdout.readline().startswith("frame")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    rows = read_results(tmp_path / "o" / f"{seq.name}.txt")
    assert 2 <= len(set(rows[:, 0].astype(int))) < 39  # the signal may land inside the third frame
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]


def test_stale_temp_files_of_killed_runs_are_removed(tmp_path):
    target = tmp_path / "last.pt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = target.with_name(f".last.pt.{dead.pid}.0badc0de.tmp")
    stale.write_bytes(b"x" * 1000)
    live = temp_path(target)  # this process is alive: its file is kept
    live.write_bytes(b"y")
    other = tmp_path / f".best.pt.{dead.pid}.0badc0de.tmp"  # another destination's: not ours to judge
    other.write_bytes(b"z")
    atomic_write_text(target, "new")
    assert not stale.exists() and live.exists() and other.exists()
    assert target.read_text() == "new"
    assert remove_stale_temps(tmp_path / "best.pt") == [other]


def test_killed_training_leaves_no_orphan_after_next_start(tmp_path):
    """kill -9 while ``last.pt`` is being written leaves its temp; the next run's start removes it."""
    from ibntrack.fileio import check_writable_file

    script = "import os, time; from ibntrack.fileio import atomic_open\n"
    script += (
        f"cm = atomic_open({str(tmp_path / 'last.pt')!r}, 'wb'); f = cm.__enter__(); f.write(b'x'*10**6)\n"
    )
    script += "print('writing', flush=True); time.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().startswith("writing")
    proc.kill()
    proc.wait()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    check_writable_file(tmp_path / "last.pt", "train.out_dir")  # what training does at its start
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ frame input


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.full((64, 96, 3), 0.5, np.float32), "dtype uint8.*float32.*multiply"),
        (np.full((64, 96, 3), 300, np.uint16), "dtype uint8.*uint16"),
        (np.full((64, 96, 3), 3, np.int64), "dtype uint8.*int64"),
        (np.zeros((64, 96), np.uint8), r"\[H, W, 3\]"),
        ([[0, 0, 0]], "numpy array"),
    ],
    ids=["float01", "uint16", "int64", "gray", "list"],
)
def test_tracker_update_rejects_frames_that_are_not_uint8_bgr(ckpt, frame, match):
    tracker = Tracker.from_checkpoint(ckpt)
    with pytest.raises(ValueError, match=match):
        tracker.update(frame)


def test_frame_size_change_mid_stream_is_an_error_and_reset_starts_anew(ckpt):
    tracker = Tracker.from_checkpoint(ckpt)
    tracker.update(np.zeros((64, 96, 3), np.uint8))
    with pytest.raises(ValueError, match=r"frame_bgr is 128x64 but this stream's frames are 96x64.*reset"):
        tracker.update(np.zeros((64, 128, 3), np.uint8))
    tracker.reset()
    tracker.update(np.zeros((64, 128, 3), np.uint8))


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("override", ["train.lr=.inf", "train.grad_clip=.nan", "train.lr=nan"])
def test_non_finite_numbers_are_rejected_naming_the_override(override):
    with pytest.raises(ValueError, match=rf"override {override!r}.*finite"):
        load_config(None, [override])


def test_non_finite_number_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  grad_clip: .nan\n")
    with pytest.raises(ValueError, match=rf"{path}: train.grad_clip must be a finite number"):
        load_config(path)


def test_out_of_range_override_is_blamed_not_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.001\n")
    with pytest.raises(
        ValueError, match=r"^override 'train.lr=-1' \(on top of .*c.yaml\): .*train.lr must be > 0"
    ):
        load_config(path, ["train.lr=-1"])
    path.write_text("train:\n  lr: -1\n")  # and the file when the file is wrong
    with pytest.raises(ValueError, match=rf"^{path}: .*train.lr must be > 0"):
        load_config(path, ["train.epochs=2"])


def test_deeply_nested_config_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("train: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ValueError, match="nested too deeply"):
        load_config(path)
    style = tmp_path / "deep_style.yaml"
    style.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert main(["synth", "--style", str(style), "--out", str(tmp_path / "s"), "--frames", "1"]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_resume_with_a_changed_learning_rate_is_refused(tmp_path):
    from tests.training.test_train import TINY, _make_sequence

    data = tmp_path / "d"
    _make_sequence(data, seed=1, objects=3, frames=4)
    base = [*TINY, f"data.train=[{data}]", f"train.out_dir={tmp_path / 'run'}", "train.epochs=1"]
    torch.set_num_threads(1)
    from ibntrack.training.train import fit

    fit(load_config(None, [*base, "train.max_steps=1"]))
    last = tmp_path / "run" / "last.pt"
    with pytest.raises(ValueError, match=r"train.lr: 0.002 in the checkpoint, 0.0005 now.*train.finetune"):
        fit(load_config(None, [*base, "train.lr=5e-4", f"train.resume={last}"]))


# --------------------------------------------------------------------------------------- video and eval


def test_truncated_video_is_reported(tmp_path, ckpt, capsys):
    import av

    path = tmp_path / "v.mp4"
    rng = np.random.default_rng(0)
    # the index (moov) first, as cameras and `-movflags faststart` write it; then cut the file short
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(30):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), np.uint8), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 4])
    [src] = open_sources(cut)
    assert src.length == 30
    frames = sum(1 for _ in src)
    assert frames < 29 and src.truncated
    assert main(["track", str(cut), "--weights", str(ckpt), "--out", str(tmp_path / "o")]) == 0
    assert f"the video ended early (truncated or corrupt); {frames} frames tracked" in capsys.readouterr().out


def test_eval_on_empty_ground_truth_is_an_error(seq, tmp_path, capsys):
    (seq / "gt" / "gt.txt").write_text("")
    res = tmp_path / "res"
    res.mkdir()
    (res / f"{seq.name}.txt").write_text("1,1,0,0,5,5,1,-1,-1,-1\n")
    assert main(["eval", "--gt", str(seq), "--results", str(res)]) == 2
    assert "nothing to evaluate: the ground truth is empty" in capsys.readouterr().err


# ------------------------------------------------------------------------------- association boundary


@pytest.mark.parametrize(
    "boxes, scores, match",
    [
        ([[10, 10, 5, 20]], [0.9], "x2 >= x1"),
        ([[0, 0, 10, 10]], [5.0], r"scores must be in \[0, 1\]"),
        ([[0, 0, 3e38, 3e38]], [0.9], "within ±1e"),
        ([[0, 0, np.inf, 10]], [0.9], "finite"),
        ([[0, 0, 10, 10]], [np.nan], "scores must be finite"),
    ],
    ids=["inverted", "score5", "huge", "inf", "nan-score"],
)
def test_multi_object_tracker_rejects_impossible_detections(boxes, scores, match):
    from ibntrack.tracking import MultiObjectTracker

    with pytest.raises(ValueError, match=match):
        MultiObjectTracker().update(np.asarray(boxes, float), np.asarray(scores, float))
