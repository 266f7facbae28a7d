"""supervision interop: sv.Detections through the tracker and back, Tracker.update(as_detections=True),
result files as sv.Detections for LineZone counting."""

import numpy as np
import pytest

sv = pytest.importorskip("supervision")

from ibntrack.interop.supervision import (  # noqa: E402
    pair_tracks,
    read_result_detections,
    update_with_detections,
)
from ibntrack.tracking import MultiObjectTracker  # noqa: E402


def _frame(t: int, order: list[int]) -> "sv.Detections":
    """Three objects moving right by 4 px per frame, listed in ``order``; equal scores (IoU decides)."""
    base = np.array([[10, 10, 30, 50], [40, 12, 60, 52], [80, 8, 100, 48]], np.float32)
    boxes = base + np.array([4 * t, 0, 4 * t, 0], np.float32)
    emb = np.eye(3, 4, dtype=np.float32) * 2.0  # distinct appearance per object, not unit length
    return sv.Detections(
        xyxy=boxes[order],
        confidence=np.full(3, 0.9, np.float32),
        class_id=np.zeros(3, np.int64),
        data={"embedding": emb[order], "object": np.array(["a", "b", "c"])[order]},
    )


def test_round_trip_keeps_rows_and_identities():
    mot = MultiObjectTracker()
    orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1], [2, 1, 0]]
    seen: dict[str, set[int]] = {"a": set(), "b": set(), "c": set()}
    for t, order in enumerate(orders):
        det = _frame(t, order)
        out = update_with_detections(mot, det)
        assert det.tracker_id is None  # the caller's detections are not changed
        assert len(out) == 3 and out.tracker_id.dtype == np.int64
        for k in range(3):  # every output row is an input row, unchanged
            j = int(np.flatnonzero(det.data["object"] == out.data["object"][k])[0])
            np.testing.assert_array_equal(out.xyxy[k], det.xyxy[j])
            np.testing.assert_array_equal(out.data["embedding"][k], det.data["embedding"][j])
            seen[str(out.data["object"][k])].add(int(out.tracker_id[k]))
        if t == 0:  # born in the first frame: ids 1, 2, 3 in detection order
            assert out.tracker_id.tolist() == [1, 2, 3]
            assert out.data["object"].tolist() == ["a", "b", "c"]
    assert seen == {"a": {1}, "b": {2}, "c": {3}}


def test_same_tracks_as_the_array_api():
    a, b = MultiObjectTracker(), MultiObjectTracker()
    rng = np.random.default_rng(3)
    for t in range(6):
        det = _frame(t, list(rng.permutation(3)))
        det.confidence = rng.uniform(0.55, 1.0, 3).astype(np.float32)
        out = update_with_detections(a, det)
        tracks = b.update(det.xyxy, det.confidence, det.data["embedding"], det.class_id)
        assert out.tracker_id.tolist() == [tr.track_id for tr in tracks]
        np.testing.assert_array_equal(out.confidence, np.array([tr.score for tr in tracks], np.float32))


def test_defaults_empty_and_bad_input():
    mot = MultiObjectTracker()
    det = sv.Detections(xyxy=np.array([[0, 0, 10, 20]], np.float32))  # no confidence, no class
    out = update_with_detections(mot, det)
    assert out.tracker_id.tolist() == [1] and len(out) == 1
    empty = update_with_detections(mot, sv.Detections.empty())
    assert len(empty) == 0 and empty.tracker_id.shape == (0,)
    with pytest.raises(ValueError, match="supervision.Detections"):
        update_with_detections(mot, np.zeros((1, 4)))
    bad = sv.Detections(xyxy=np.zeros((2, 4), np.float32) + [0, 0, 5, 5], data={"embedding": np.ones((2,))})
    with pytest.raises(ValueError, match=r"data\['embedding'\]"):
        update_with_detections(mot, bad)
    neg = sv.Detections(xyxy=np.array([[0, 0, 5, 5]], np.float32), class_id=np.array([-1]))
    with pytest.raises(ValueError, match="class_id"):
        update_with_detections(mot, neg)
    hot = sv.Detections(xyxy=np.array([[0, 0, 5, 5]], np.float32), confidence=np.array([5.0]))
    with pytest.raises(ValueError, match="confidence"):
        update_with_detections(mot, hot)


def test_pair_tracks_refuses_tracks_of_another_frame():
    mot = MultiObjectTracker()
    tracks = mot.update(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32))
    with pytest.raises(RuntimeError, match="same update"):  # another score, no overlap
        pair_tracks(tracks, np.array([[50, 50, 60, 60]]), np.array([0.8]), np.array([0]))
    with pytest.raises(RuntimeError, match="1 tracks but 0 detections"):
        pair_tracks(tracks, np.zeros((0, 4)), np.zeros(0), np.zeros(0))


def test_pairs_when_a_track_keeps_its_class_but_the_detection_changes_it():
    from ibntrack.tracking import TrackerConfig

    mot = MultiObjectTracker(TrackerConfig(per_class=False))
    conf = np.array([0.9, 0.8], np.float32)
    first = sv.Detections(
        np.array([[0, 0, 10, 20], [40, 0, 50, 20]], np.float32), None, conf, np.array([0, 1])
    )
    update_with_detections(mot, first)
    # both objects change class (and swap rows): a track keeps its first class, so classes now differ
    conf = np.array([0.7, 0.6], np.float32)
    second = sv.Detections(
        np.array([[41, 0, 51, 20], [1, 0, 11, 20]], np.float32), None, conf, np.array([0, 1])
    )
    out = update_with_detections(mot, second)
    assert out.tracker_id.tolist() == [1, 2]
    np.testing.assert_array_equal(out.xyxy, second.xyxy[[1, 0]])


def test_tracker_update_as_detections(tmp_path):
    import torch

    from ibntrack.engine.infer import Tracker
    from ibntrack.nn import build_model
    from ibntrack.nn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("resnet18-ibn", num_classes=2, emb_dim=8, width=0.25, head_conv=16)
    with torch.no_grad():
        model.heads.heads["hm"][-1].bias.fill_(3.0)  # fires everywhere: many tracks
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(
        ckpt,
        {
            "model": model.state_dict(),
            "model_config": model.config.to_dict(),
            "class_names": ["pedestrian", "vehicle"],
            "input_size": [64, 96],
            "num_ids": 5,
        },
    )
    frames = [np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8) for i in range(3)]
    plain, svt = Tracker.from_checkpoint(ckpt), Tracker.from_checkpoint(ckpt)
    for frame in frames:
        tracks = plain.update(frame)
        out = svt.update(frame, as_detections=True)
    assert isinstance(out, sv.Detections) and len(out) == len(tracks) > 0
    assert out.tracker_id.tolist() == [t.track_id for t in tracks]
    dets = svt.last_detections
    for k in range(len(out)):  # each row is one of the frame's network detections
        j = np.flatnonzero((dets.boxes == out.xyxy[k]).all(axis=1) & (dets.scores == out.confidence[k]))
        assert j.size >= 1
    norms = np.linalg.norm(out.data["embedding"], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert set(out.data["class_name"]) <= {"pedestrian", "vehicle"}
    assert [str(n) for n in out.data["class_name"]] == [["pedestrian", "vehicle"][c] for c in out.class_id]


def test_result_file_counts_line_crossings(tmp_path):
    # track 1 walks right across x = 50 (between frames 2 and 3), track 2 walks left across it,
    # track 3 stays left of it; frame 4 has no rows (must still be yielded, empty)
    rows = []
    for f, x1, x2 in [(1, 20, 70), (2, 35, 60), (3, 55, 40), (5, 75, 20)]:
        rows += [f"{f},1,{x1},10,10,20,0.9,-1,-1,-1", f"{f},2,{x2},40,10,20,0.8,-1,-1,-1"]
        rows.append(f"{f},3,5,70,10,20,0.7,-1,-1,-1")
    path = tmp_path / "seq.txt"
    path.write_text("\n".join(rows) + "\n")
    frames = list(read_result_detections(path))
    assert [f for f, _ in frames] == [1, 2, 3, 4, 5]
    assert len(frames[3][1]) == 0 and frames[0][1].tracker_id.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(frames[0][1].xyxy[0], [20, 10, 30, 30])  # xywh -> xyxy
    line = sv.LineZone(start=sv.Point(50, 0), end=sv.Point(50, 100))
    for _, det in frames:
        line.trigger(det)
    assert (line.in_count, line.out_count) == (1, 1)
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,0,0,10,10,0.9\n2,x,0,0,10,10\n")
    with pytest.raises(ValueError, match="bad.txt"):
        list(read_result_detections(bad))
