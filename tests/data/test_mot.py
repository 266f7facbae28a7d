"""MOTChallenge I/O: round trips, filters, clipping, malformed input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from ibntrack.data.mot import (
    MOTFormatError,
    frame_path,
    iter_frames,
    load_sequence,
    load_sequences,
    read_gt,
    read_results,
    write_gt,
    write_results,
    write_seqinfo,
)


def _make_seq(root: Path, rows, name="seq", width=100, height=80, length=3, images=False, **info) -> Path:
    seq = root / name
    write_seqinfo(seq, name=name, frame_rate=25, length=length, width=width, height=height, **info)
    if rows is not None:
        write_gt(seq / "gt" / "gt.txt", rows)
    if images:
        import cv2

        (seq / "img1").mkdir(parents=True, exist_ok=True)
        for f in range(1, length + 1):
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), np.zeros((height, width, 3), np.uint8))
    return seq


def test_gt_round_trip(tmp_path):
    rows = np.array(
        [
            [1, 1, 10.5, 20.25, 30, 40, 1, 1, 1.0],
            [1, 2, 50, 10, 20, 30, 1, 1, 0.5],
            [2, 1, 12, 21, 30, 40, 1, 1, 0.75],
        ]
    )
    seq = load_sequence(_make_seq(tmp_path, rows))
    assert seq.name == "seq" and (seq.width, seq.height, seq.length, seq.frame_rate) == (100, 80, 3, 25.0)
    assert sorted(seq.annotations) == [1, 2]
    a = seq.annotations[1]
    np.testing.assert_allclose(a.boxes, [[10.5, 20.25, 40.5, 60.25], [50, 10, 70, 40]])
    np.testing.assert_array_equal(a.ids, [1, 2])
    np.testing.assert_array_equal(a.classes, [0, 0])
    np.testing.assert_allclose(a.visibility, [1.0, 0.5])
    np.testing.assert_allclose(read_gt(seq.path / "gt" / "gt.txt"), rows)


def test_results_round_trip(tmp_path):
    rows = [(2, 7, 1.5, 2.25, 10, 20, 0.9), (1, 3, 0, 0, 5, 5, 0.12345)]
    path = write_results(tmp_path / "res" / "a.txt", rows)
    text = path.read_text().splitlines()
    assert text[0] == "1,3,0,0,5,5,0.1235,-1,-1,-1"  # sorted by frame, MOT layout with -1 tails
    back = read_results(path)
    np.testing.assert_allclose(back, [[1, 3, 0, 0, 5, 5, 0.1235], [2, 7, 1.5, 2.25, 10, 20, 0.9]])
    assert not list(path.parent.glob(".*tmp"))  # the temporary file was renamed away
    assert read_results(write_results(tmp_path / "empty.txt", [])).shape == (0, 7)


@pytest.mark.parametrize(
    "line, what",
    [
        ("1,1,10,20,30", "expected 6 to 10"),
        ("1,1,10,abc,30,40,1,1,1", "y (field 4) is not a number: 'abc'"),
        ("1.5,1,10,20,30,40,1,1,1", "frame must be an integer"),
        ("0,1,10,20,30,40,1,1,1", "1-based"),
        ("1,1,10,20,30,40,1,2.5,1", "class must be an integer"),
        ("1,1,10,20,30,nan,1,1,1", "not finite"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, what):
    seq = _make_seq(tmp_path, None)
    gt = seq / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("1,1,10,20,30,40,1,1,1\n\n" + line + "\n")
    with pytest.raises(MOTFormatError) as err:
        load_sequence(seq)
    assert str(gt) in str(err.value) and "line 3" in str(err.value) and what in str(err.value)
    assert isinstance(err.value, ValueError)


def test_filters_flag_class_visibility(tmp_path):
    rows = [
        [1, 1, 0, 0, 10, 10, 1, 1, 1.0],  # kept
        [1, 2, 0, 0, 10, 10, 0, 1, 1.0],  # flag 0: ignored when eval_only
        [1, 3, 0, 0, 10, 10, 1, 7, 1.0],  # static person: not in the class map
        [1, 4, 0, 0, 10, 10, 1, 1, 0.1],  # low visibility
        [1, 5, 0, 0, 10, 10, 1, 3, 1.0],  # car
    ]
    path = _make_seq(tmp_path, rows)
    assert load_sequence(path, min_visibility=0.2).annotations[1].ids.tolist() == [1]
    assert load_sequence(path).annotations[1].ids.tolist() == [1, 4]
    assert load_sequence(path, eval_only=False).annotations[1].ids.tolist() == [1, 2, 4]
    both = load_sequence(path, class_map={1: 0, 3: 1})
    assert both.annotations[1].ids.tolist() == [1, 4, 5]
    assert both.annotations[1].classes.tolist() == [0, 0, 1]


def test_class_names_from_seqinfo(tmp_path):
    rows = [[1, 1, 0, 0, 10, 10, 1, 1, 1.0], [1, 2, 0, 0, 10, 10, 1, 3, 1.0]]
    seq = load_sequence(
        _make_seq(tmp_path, rows, scene=("Winter", "snow"), class_names=("pedestrian", "vehicle"))
    )
    assert seq.class_names == ("pedestrian", "vehicle") and dict(seq.class_map) == {1: 0, 3: 1}
    assert seq.annotations[1].classes.tolist() == [0, 1]
    assert seq.scene == ("winter", "snow")
    # asking for other model classes overrides the sequence's own names
    vehicles = load_sequence(seq.path, class_names=("vehicle",))
    assert vehicles.annotations[1].ids.tolist() == [2] and vehicles.annotations[1].classes.tolist() == [0]


def test_clipping_and_dropping_are_counted(tmp_path, caplog):
    rows = [
        [1, 1, -5, 10, 20, 20, 1, 1, 1.0],  # clipped at the left border
        [1, 2, 10, 10, 0, 20, 1, 1, 1.0],  # zero width: dropped
        [1, 3, 200, 10, 20, 20, 1, 1, 1.0],  # outside the 100 px wide image: dropped
        [1, 4, 10, 10, 20, 20, 1, 1, 1.0],
    ]
    with caplog.at_level(logging.WARNING, logger="ibntrack.data.mot"):
        seq = load_sequence(_make_seq(tmp_path, rows))
    np.testing.assert_allclose(seq.annotations[1].boxes, [[0, 10, 15, 30], [10, 10, 30, 30]])
    msg = caplog.text
    assert "1 box(es) extend beyond the 100x80 image" in msg
    assert "dropped 1 box(es) of non-positive size and 1 outside" in msg


def test_missing_images_are_listed(tmp_path):
    rows = [[f, 1, 0, 0, 10, 10, 1, 1, 1.0] for f in (1, 2, 3)]
    seq_dir = _make_seq(tmp_path, rows, images=True)
    (seq_dir / "img1" / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000002.jpg"):
        load_sequence(seq_dir)
    assert len(load_sequence(seq_dir, check_images=False).annotations) == 3


def test_sequence_without_gt_and_layouts(tmp_path):
    _make_seq(tmp_path / "train", [[1, 1, 0, 0, 10, 10, 1, 1, 1.0]], name="a", images=True)
    _make_seq(tmp_path / "test", None, name="b", images=True)
    seqs = load_sequences(tmp_path)  # <root>/<split>/<seq>
    assert [s.name for s in seqs] == ["b", "a"]
    assert seqs[0].annotations == {} and not seqs[0].has_gt
    assert [s.name for s in load_sequences(tmp_path / "train")] == ["a"]  # <root>/<seq>
    assert [s.name for s in load_sequences(tmp_path / "train" / "a")] == ["a"]  # the sequence itself
    frames = list(iter_frames(seqs[1]))
    assert [f for f, _, _ in frames] == [1, 2, 3] and frames[0][1].shape == (80, 100, 3)
    assert len(frames[0][2]) == 1 and len(frames[1][2]) == 0
    assert frame_path(seqs[1], 12).name == "000012.jpg"
    with pytest.raises(FileNotFoundError, match="no MOTChallenge sequence"):
        load_sequences(tmp_path / "train" / "a" / "gt")


def test_mot15_ten_field_layout(tmp_path):
    seq = tmp_path / "old"
    write_seqinfo(seq, name="old", frame_rate=7, length=2, width=640, height=480)
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text(
        "1,1,88,99,61.08,218.56,1,4.4852,5.5016,0\n2,1,90,99,61,218,0,-1,-1,-1\n"
    )
    s = load_sequence(seq)
    assert list(s.annotations) == [1]
    np.testing.assert_allclose(s.annotations[1].boxes, [[88, 99, 149.08, 317.56]], rtol=1e-6)
    assert s.annotations[1].visibility.tolist() == [1.0]
