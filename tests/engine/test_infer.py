"""The inference pipeline and `ibntrack track` / `ibntrack demo` on a tiny randomly initialised model."""

import json

import cv2
import numpy as np
import pytest

from ibntrack.cli import main
from ibntrack.data.mot import read_results
from ibntrack.data.synth import generate_sequence
from ibntrack.engine.infer import Tracker, track
from ibntrack.nn import build_model, stream_stats
from ibntrack.nn.checkpoint import save_checkpoint
from tests.tiny import save_tiny_checkpoint

INPUT = (64, 96)  # (H, W)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny two-class checkpoint whose heatmap fires everywhere, so every stage has work to do."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_tiny_checkpoint(path, 3.0, ("pedestrian", "vehicle"), train_scene=["summer", "street", "day"])


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    return generate_sequence(root, domain="winter", frames=5, objects=3, size=(96, 64), seed=1, name="w")


def test_tracker_api_boxes_in_frame_pixels(ckpt, seq):
    tracker = Tracker.from_checkpoint(ckpt, scene="winter, snow, street")
    # relevance({snow, street, winter}, {day, street, summer}) is low -> a conservative sparsity factor
    assert tracker.sparsity in (2, 3)
    frame = cv2.imread(str(seq / "img1" / "000001.jpg"))
    big = cv2.resize(frame, (192, 128))  # frames of another size than the network input
    for _ in range(3):
        tracks = tracker.update(big)
    assert tracks, "a heatmap that fires everywhere must give tracks"
    boxes = np.stack([t.box for t in tracks])
    # Kalman estimates of boxes clipped at the border may be off by float rounding (−4e-7 px seen)
    assert (boxes[:, [0, 2]] >= -1e-3).all() and (boxes[:, [0, 2]] <= 192 + 1e-3).all()
    assert (boxes[:, [1, 3]] >= -1e-3).all() and (boxes[:, [1, 3]] <= 128 + 1e-3).all()
    assert {t.cls for t in tracks} <= {0, 1}
    assert stream_stats(tracker.backend)["frames"] == 3
    tracker.reset()
    assert stream_stats(tracker.backend)["frames"] == 0 and tracker.mot.frame_id == 0


def test_track_cli_writes_well_formed_files(ckpt, seq, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "track",
            str(seq),
            "--weights",
            str(ckpt),
            "--out",
            str(out),
            "--save-video",
            "--save-json",
            "--sparsity",
            "2",
        ]
    )
    assert code == 0
    rows = read_results(out / "w.txt")
    assert len(rows) > 0 and set(rows[:, 0].astype(int)) <= {1, 2, 3, 4, 5}
    assert (rows[:, 4] > 0).all() and (rows[:, 5] > 0).all()
    classes = {line.split(",")[7] for line in (out / "w.txt").read_text().splitlines()}
    assert classes <= {"1", "3"}  # MOT class ids of pedestrian and vehicle
    lines = (out / "w.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [1, 2, 3, 4, 5]
    assert (out / "w.mp4").stat().st_size > 0
    text = capsys.readouterr().out
    assert "model ms" in text and "w " in text


def test_track_function_reuses_a_tracker(ckpt, seq, tmp_path):
    tracker = Tracker.from_checkpoint(ckpt, sparsity=1)
    (s1,) = track(seq, tracker=tracker, out_dir=tmp_path / "a", progress=False)
    (s2,) = track(seq, tracker=tracker, out_dir=tmp_path / "b", progress=False)
    assert s1.frames == s2.frames == 5
    # reset between sources: identical input gives identical ids and boxes
    assert (tmp_path / "a" / "w.txt").read_text() == (tmp_path / "b" / "w.txt").read_text()


def test_a_failing_source_leaves_no_result_file(ckpt, seq, tmp_path):
    broken = tmp_path / "broken"
    (broken / "img1").mkdir(parents=True)
    for f in sorted((seq / "img1").iterdir())[:3]:
        (broken / "img1" / f.name).write_bytes(f.read_bytes())
    (broken / "img1" / "000004.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="000004.jpg"):
        track(broken, ckpt, out_dir=out, save_video=True, save_json=True, progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_cli_errors_name_the_file(ckpt, seq, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["track", str(seq), "--weights", str(bad), "--out", str(tmp_path)]) == 2
    assert "bad.pt" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "nope.mp4"), "--weights", str(ckpt)]) == 2
    assert "nope.mp4: no such file" in capsys.readouterr().err


def test_demo_runs_end_to_end_with_given_weights(ckpt, tmp_path, capsys):
    code = main(
        ["demo", "--weights", str(ckpt), "--frames", "4", "--out", str(tmp_path / "demo"), "--no-video"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "HOTA" in text and "COMBINED" in text
    assert (tmp_path / "demo" / "metrics.json").is_file()


def test_track_with_onnxruntime_matches_torch(ckpt, seq, tmp_path):
    from ibntrack.export import export_onnx

    onnx_path = export_onnx(ckpt, tmp_path / "tiny.onnx")
    for backend, weights in (("torch", ckpt), ("onnxruntime", onnx_path)):
        code = main(
            [
                "track",
                str(seq),
                "--weights",
                str(weights),
                "--out",
                str(tmp_path / backend),
                "--backend",
                backend,
                "--sparsity",
                "3",
                "--precision",
                "fp32",  # the CLI default is auto (bf16 where native): compare the backends in fp32
            ]
        )
        assert code == 0
    a, b = read_results(tmp_path / "torch" / "w.txt"), read_results(tmp_path / "onnxruntime" / "w.txt")
    assert a.shape == b.shape and np.allclose(a, b, atol=0.05)


def test_checkpoint_without_scene_warns_and_is_conservative(tmp_path, caplog):
    model = build_model("resnet18-ibn", num_classes=1, emb_dim=8, width=0.25, head_conv=8)
    path = save_checkpoint(
        tmp_path / "noscene.pt",
        {"model": model.state_dict(), "model_config": model.config.to_dict(), "input_size": list(INPUT)},
    )
    with caplog.at_level("WARNING"):
        tracker = Tracker.from_checkpoint(path, scene="summer, street")
    assert "no training scene" in caplog.text
    assert tracker.sparsity == 2  # relevance 0 -> s_min


def test_demo_compares_with_a_baseline_side_by_side(ckpt, tmp_path, capsys):
    code = main(
        [
            "demo",
            "--weights",
            str(ckpt),
            "--baseline",
            str(ckpt),
            "--frames",
            "3",
            "--out",
            str(tmp_path / "demo"),
            "--no-video",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "HOTA", "MOTA", "IDF1", "DetA", "AssA", "IDSW", "ids"]
    rows = [line.split() for line in text.splitlines() if line.startswith("tiny ")]
    assert len(rows) == 2 and rows[0][1:] == rows[1][1:], "one model tracked twice must score the same"
    assert (tmp_path / "demo" / "metrics-tiny.json").is_file()
    assert text.count("sparsity factor s=") == 2


def test_demo_says_a_plain_bn_baseline_has_no_in_layers(ckpt, tmp_path, capsys):
    bn = save_tiny_checkpoint(tmp_path / "bn.pt", 3.0, ("pedestrian", "vehicle"), arch="resnet18")
    args = ["demo", "--weights", str(ckpt), "--baseline", str(bn), "--frames", "2", "--no-video"]
    assert main([*args, "--out", str(tmp_path / "demo")]) == 0
    lines = capsys.readouterr().out.splitlines()
    [ibn_line, bn_line] = [line for line in lines if "frames/s" in line]
    assert "sparsity factor s=" in ibn_line and "plain BN (no IN layers)" in bn_line
