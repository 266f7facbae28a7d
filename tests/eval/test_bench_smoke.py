"""Smoke test of benchmarks/bench_association.py's core functions on tiny generated scenes (no real data)."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackers")
pytest.importorskip("supervision")
pytest.importorskip("trackeval")

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_association.py"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture(scope="module")
def bench():
    """The benchmark script as a module; its thread-count defaults are not left in this process."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    spec = importlib.util.spec_from_file_location("bench_association", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return module


def _write_sequence(root, name, gt_frames, mot15):
    """A MOTChallenge folder; MOT15 style puts world coordinates where MOT17 has class and visibility."""
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    lines = []
    for frame, (boxes, ids, _, _) in gt_frames.items():
        for (x1, y1, x2, y2), tid in zip(boxes, ids, strict=True):
            tail = f"1,{3.5 + frame:.3f},{tid + 0.25:.3f},0" if mot15 else "1,1,1"
            lines.append(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{tail}")
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nframeRate=30\nseqLength={len(gt_frames)}\nimWidth=1920\nimHeight=1080\n"
    )


def test_latency_reports_every_tracker(bench):
    (res,) = bench.measure_latency(sizes=(8,), frames=15, repeats=2, seed=0)
    assert res.n_objects == 8 and res.frames == 15
    keys = ["ours_emb", "ours_iou", *bench.PEER_KEYS]
    assert sorted(res.ms_per_frame) == sorted(keys)
    for key in keys:
        assert len(res.ms_per_frame[key]) == 2 and res.median_ms(key) > 0
        assert res.median_ms(key, wall=True) > 0
        assert 0 < res.tracks_per_frame[key] <= 8
    table = bench.latency_table([res])
    assert table.count("\n") == 2 and "trackers ByteTrack" in table and "trackers OC-SORT" in table


@pytest.mark.parametrize("mot15", [False, True])
def test_quality_scores_identical_detections(bench, tmp_path, mot15):
    n_objects = 5
    gt = bench.synthetic_scene(n_objects, 40, np.random.default_rng(1))
    _write_sequence(tmp_path / "DS", "SEQ-01", gt, mot15)
    seqs = bench.load_dataset(tmp_path / "DS", tmp_path / "work", seed=0, qualities=list(bench.EMB_QUALITIES))
    (seq,) = seqs
    # Every embedding level sees the same boxes, scores and classes; only the embeddings differ.
    ref = seq.detections[bench.DEFAULT_QUALITY]
    for q in bench.EMB_QUALITIES:
        for f, (boxes, scores, emb, _) in seq.detections[q].items():
            np.testing.assert_array_equal(boxes, ref[f][0])
            np.testing.assert_array_equal(scores, ref[f][1])
            assert emb.shape == ref[f][2].shape
    assert not np.array_equal(seq.detections["clean"][1][2], seq.detections["random"][1][2])
    res = bench.measure_quality("DS", seqs, tmp_path / "work", repeats=1)
    assert res.mot17_preproc is (not mot15)
    assert res.frames == 40
    for key in bench.TRACKER_KEYS:
        m = res.metrics[key]
        # World coordinates must not be read as classes: one identity per object.
        assert m["GT_IDs"] == n_objects
        assert m["HOTA"] > 0.3 and m["MOTA"] > 0.3
        assert res.median_fps(key) > 0
    assert "IDSW" in bench.quality_table(res)
    targets = bench.targets_table([res])
    assert targets.count("\n") == 2 and "DS" in targets


def test_subsampled_ground_truth(bench, tmp_path):
    """Every 3rd frame of a 30-fps sequence, renumbered, at 10 fps (the MOT17@10fps set)."""
    gt = bench.synthetic_scene(2, 10, np.random.default_rng(2))
    _write_sequence(tmp_path / "DS", "SEQ-01", gt, mot15=False)
    (seq,) = bench.load_dataset(tmp_path / "DS", tmp_path / "work", seed=0, step=None)
    assert seq.frame_rate == 10 and seq.length == 4  # frames 1, 4, 7, 10 -> 1..4
    lines = (seq.gt_dir / "gt" / "gt.txt").read_text().splitlines()
    assert sorted({int(line.split(",")[0]) for line in lines}) == [1, 2, 3, 4]
    x_frame4 = [float(line.split(",")[2]) for line in lines if line.startswith("2,1,")]
    assert x_frame4 == [pytest.approx(gt[4][0][0, 0], abs=0.01)]  # new frame 2 = old frame 4
