"""Tests for ibntrack.eval.metrics on hand-made ground truth / result pairs with hand-computed metrics."""

import json
import logging
import math

import pytest

pytest.importorskip("trackeval")

from ibntrack.eval.metrics import EvalReport, evaluate  # noqa: E402

# Two far-apart static boxes (x, y, w, h): any IoU between them is 0.
BOX_A = (10, 10, 20, 40)
BOX_B = (200, 10, 20, 40)


def _gt_row(frame, tid, box, flag=1, cls=1, vis=1.0):
    return f"{frame},{tid},{box[0]},{box[1]},{box[2]},{box[3]},{flag},{cls},{vis}"


def _res_row(frame, tid, box, score=0.9, cls=-1):
    return f"{frame},{tid},{box[0]},{box[1]},{box[2]},{box[3]},{score},{cls},-1,-1"


def _write_seq(root, name, gt_rows, length, seqinfo=True):
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").write_text("\n".join(gt_rows) + "\n")
    if seqinfo:
        (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={length}\nframeRate=30\n")
    return seq


def _write_res(res_dir, name, rows):
    res_dir.mkdir(exist_ok=True)
    (res_dir / f"{name}.txt").write_text("".join(r + "\n" for r in rows))


def _two_objects_gt():
    return [_gt_row(f, 1, BOX_A) for f in range(1, 5)] + [_gt_row(f, 2, BOX_B) for f in range(1, 5)]


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "gt", tmp_path / "res"


def test_perfect_tracking(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _two_objects_gt(), 4)
    # Different id values than the ground truth: only consistency matters.
    _write_res(
        res_dir,
        "seq1",
        [_res_row(f, 7, BOX_A) for f in range(1, 5)] + [_res_row(f, 9, BOX_B) for f in range(1, 5)],
    )
    report = evaluate(gt_root, res_dir)
    m = report.combined
    for key in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "DetRe", "DetPr"):
        assert m[key] == pytest.approx(1.0), key
    assert (m["IDSW"], m["FP"], m["FN"], m["TP"], m["Frag"]) == (0, 0, 0, 8, 0)
    assert (m["GT_Dets"], m["GT_IDs"], m["Dets"], m["IDs"], m["MT"]) == (8, 2, 8, 2, 2)
    assert report.per_sequence["seq1"] == m
    assert list(report.per_class) == ["all"]


def test_id_swap(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _two_objects_gt(), 4)
    # Track 1 follows A in frames 1-2 then B in 3-4; track 2 the other way round.
    rows = [_res_row(f, 1, BOX_A if f <= 2 else BOX_B) for f in range(1, 5)]
    rows += [_res_row(f, 2, BOX_B if f <= 2 else BOX_A) for f in range(1, 5)]
    _write_res(res_dir, "seq1", rows)
    m = evaluate(gt_root, res_dir).combined
    # CLEAR: 8 TP, both objects change track at frame 3 → IDSW = 2; MOTA = 1 − (0 + 0 + 2) / 8.
    assert (m["TP"], m["FP"], m["FN"], m["IDSW"]) == (8, 0, 0, 2)
    assert m["MOTA"] == pytest.approx(0.75)
    # Identity: best bijection keeps 2 of 4 frames per object → IDTP 4, IDFP 4, IDFN 4; IDF1 = 4 / (4 + 4).
    assert (m["IDTP"], m["IDFP"], m["IDFN"]) == (4, 4, 4)
    assert m["IDF1"] == pytest.approx(0.5)
    # HOTA: all boxes exact → DetA 1; each TP has TPA 2, FNA 2, FPA 2 → AssA 1/3; HOTA = sqrt(1/3).
    assert m["DetA"] == pytest.approx(1.0)
    assert m["AssA"] == pytest.approx(1 / 3)
    assert m["HOTA"] == pytest.approx(math.sqrt(1 / 3))


def test_missed_detection_and_false_positive(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", [_gt_row(f, 1, BOX_A) for f in range(1, 5)], 4)
    rows = [_res_row(f, 1, BOX_A) for f in (1, 2, 4)] + [_res_row(3, 5, BOX_B)]
    _write_res(res_dir, "seq1", rows)
    m = evaluate(gt_root, res_dir).combined
    # CLEAR: TP 3, FN 1 (frame 3), FP 1 (track 5) → MOTA = 1 − 2/4; the gap is one fragmentation
    # (TrackEval counts it because frame 3 has a result box; it skips frames with none).
    assert (m["TP"], m["FN"], m["FP"], m["IDSW"], m["Frag"]) == (3, 1, 1, 0, 1)
    assert m["MOTA"] == pytest.approx(0.5)
    assert (m["MT"], m["PT"], m["ML"]) == (0, 1, 0)  # covered 75 % < 80 %
    # Identity: IDTP 3, IDFN 1, IDFP 1 → IDF1 = 3 / (3 + 1).
    assert m["IDF1"] == pytest.approx(0.75)
    # HOTA: DetA = 3 / (3 + 1 + 1) at every threshold; AssA = 3 / (3 + 1 + 0); HOTA = sqrt(0.6 · 0.75).
    assert m["DetA"] == pytest.approx(0.6)
    assert (m["DetRe"], m["DetPr"]) == (pytest.approx(0.75), pytest.approx(0.75))
    assert m["AssA"] == pytest.approx(0.75)
    assert m["HOTA"] == pytest.approx(math.sqrt(0.45))


def test_localisation(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", [_gt_row(1, 1, (0, 0, 100, 100))], 1)
    _write_res(res_dir, "seq1", [_res_row(1, 1, (0, 0, 100, 62))])  # IoU 0.62
    m = evaluate(gt_root, res_dir).combined
    assert m["MOTP"] == pytest.approx(0.62)
    assert m["MOTA"] == pytest.approx(1.0)
    # HOTA averages 19 thresholds 0.05..0.95; the box matches at 0.05..0.60 (12 of them), with AssA 1.
    assert m["HOTA"] == pytest.approx(12 / 19)


def test_several_sequences_combined(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "a_perfect", _two_objects_gt(), 4)
    _write_seq(gt_root, "b_swap", _two_objects_gt(), 4)
    _write_res(
        res_dir,
        "a_perfect",
        [_res_row(f, 1, BOX_A) for f in range(1, 5)] + [_res_row(f, 2, BOX_B) for f in range(1, 5)],
    )
    rows = [_res_row(f, 1, BOX_A if f <= 2 else BOX_B) for f in range(1, 5)]
    rows += [_res_row(f, 2, BOX_B if f <= 2 else BOX_A) for f in range(1, 5)]
    _write_res(res_dir, "b_swap", rows)
    report = evaluate(gt_root, res_dir)
    assert list(report.per_sequence) == ["a_perfect", "b_swap"]
    assert report.per_sequence["a_perfect"]["MOTA"] == pytest.approx(1.0)
    assert report.per_sequence["b_swap"]["MOTA"] == pytest.approx(0.75)
    # Pooled: 16 GT, 2 IDSW → MOTA 0.875; IDTP 8 + 4 = 12, IDFP = IDFN = 4 → IDF1 = 12 / 16.
    assert report.combined["MOTA"] == pytest.approx(0.875)
    assert report.combined["IDF1"] == pytest.approx(0.75)
    # A list of sequence folders (and a single folder) works like the root.
    listed = evaluate([gt_root / "b_swap"], res_dir)
    assert list(listed.per_sequence) == ["b_swap"]
    assert evaluate(gt_root / "b_swap", res_dir).combined == listed.combined


def _multiclass_gt():
    # Two pedestrians (class 1) and one car (class 3), 2 frames.
    rows = [_gt_row(f, 1, BOX_A, cls=1) for f in (1, 2)] + [_gt_row(f, 2, BOX_B, cls=1) for f in (1, 2)]
    return rows + [_gt_row(f, 3, (400, 10, 50, 30), cls=3) for f in (1, 2)]


def test_multiclass(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _multiclass_gt(), 2)
    rows = [_res_row(f, 1, BOX_A, cls=1) for f in (1, 2)] + [_res_row(f, 2, BOX_B, cls=1) for f in (1, 2)]
    rows += [_res_row(1, 1, (400, 10, 50, 30), cls=3)]  # the car is missed in frame 2; ids are per class
    _write_res(res_dir, "seq1", rows)
    report = evaluate(gt_root, res_dir, classes=[1, "car"])
    assert list(report.per_class) == ["pedestrian", "car"]
    assert report.per_class["pedestrian"]["MOTA"] == pytest.approx(1.0)
    car = report.per_class["car"]
    assert (car["TP"], car["FN"], car["FP"]) == (1, 1, 0)
    assert car["MOTA"] == pytest.approx(0.5)
    assert car["IDF1"] == pytest.approx(2 / 3)  # IDTP 1, IDFN 1 → 1 / (1 + 0.5)
    # Pooled over classes: 6 GT, 1 FN → MOTA 5/6; IDTP 5, IDFN 1 → IDF1 5 / 5.5.
    assert report.combined["MOTA"] == pytest.approx(5 / 6)
    assert report.combined["IDF1"] == pytest.approx(10 / 11)
    assert report.per_sequence["seq1"] == report.combined
    assert "class:car" in report.to_table()
    # One class only: the other class's results are not counted.
    only_car = evaluate(gt_root, res_dir, classes=3).combined
    assert (only_car["GT_Dets"], only_car["Dets"], only_car["FP"]) == (2, 1, 0)


def test_classless_results(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _multiclass_gt(), 2)
    rows = [_res_row(f, 1, BOX_A) for f in (1, 2)] + [_res_row(f, 2, BOX_B) for f in (1, 2)]
    _write_res(res_dir, "seq1", rows)
    # A single-class tracker evaluated on one class: all its rows are used.
    ped = evaluate(gt_root, res_dir, classes=[1]).combined
    assert ped["MOTA"] == pytest.approx(1.0)
    # On the car class the same rows are 4 false positives (and 2 misses): MOTA = (0 − 4) / 2.
    car = evaluate(gt_root, res_dir, classes=[3]).combined
    assert (car["FP"], car["FN"]) == (4, 2)
    assert car["MOTA"] == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="no class labels"):
        evaluate(gt_root, res_dir, classes=[1, 3])


def test_ignored_gt_and_mot17_preproc(dirs):
    gt_root, res_dir = dirs
    # A pedestrian and a distractor (class 8, flag 0) that the tracker also follows.
    gt = [_gt_row(f, 1, BOX_A) for f in (1, 2)] + [_gt_row(f, 2, BOX_B, flag=0, cls=8) for f in (1, 2)]
    _write_seq(gt_root, "seq1", gt, 2)
    _write_res(
        res_dir, "seq1", [_res_row(f, 1, BOX_A) for f in (1, 2)] + [_res_row(f, 2, BOX_B) for f in (1, 2)]
    )
    plain = evaluate(gt_root, res_dir).combined
    assert (plain["GT_Dets"], plain["TP"], plain["FP"]) == (2, 2, 2)  # flag 0 is not a target
    assert plain["MOTA"] == pytest.approx(0.0)
    official = evaluate(gt_root, res_dir, mot17_preproc=True).combined
    assert (official["GT_Dets"], official["TP"], official["FP"]) == (2, 2, 0)  # distractor boxes removed
    assert official["MOTA"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="pedestrians only"):
        evaluate(gt_root, res_dir, classes=[3], mot17_preproc=True)


def test_missing_result_file(dirs, caplog):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _two_objects_gt(), 4)
    res_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="seq1.txt"):
        evaluate(gt_root, res_dir)
    with caplog.at_level(logging.WARNING):
        m = evaluate(gt_root, res_dir, allow_missing=True).combined
    assert "seq1.txt" in caplog.text
    assert (m["FN"], m["TP"], m["MOTA"], m["HOTA"]) == (8, 0, 0.0, 0.0)


def test_no_seqinfo_and_empty_result_file(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", [_gt_row(f, 1, BOX_A) for f in range(1, 4)], 3, seqinfo=False)
    _write_res(res_dir, "seq1", [])
    m = evaluate(gt_root, res_dir).combined
    assert (m["GT_Dets"], m["FN"], m["Dets"]) == (3, 3, 0)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1,1,10,10,20", r"seq1.txt:2: expected at least 6 columns"),
        ("1,1,10,ten,20,40,0.9,-1,-1,-1", r"seq1.txt:2: not a number"),
        ("0,1,10,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: frame must be"),
        ("1.5,1,10,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: frame must be"),
        ("1,-3,10,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: id must be"),
        ("1,4,10,10,-20,40,0.9,-1,-1,-1", r"seq1.txt:2: negative box size"),
        ("9,4,10,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: frame 9 outside the sequence \(1..4\)"),
        ("1,1,200,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: id 1 appears twice in frame 1"),
        ("1,2,nan,10,20,40,0.9,-1,-1,-1", r"seq1.txt:2: non-finite"),
    ],
)
def test_malformed_result_line(dirs, line, match):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _two_objects_gt(), 4)
    _write_res(res_dir, "seq1", [_res_row(1, 1, BOX_A), line])
    with pytest.raises(ValueError, match=match):
        evaluate(gt_root, res_dir)


def test_bad_arguments(dirs, tmp_path):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", _two_objects_gt(), 4)
    _write_res(res_dir, "seq1", [])
    with pytest.raises(ValueError, match="classes"):
        evaluate(gt_root, res_dir, classes=["spaceship"])
    with pytest.raises(ValueError, match="classes"):
        evaluate(gt_root, res_dir, classes=[0])
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate(gt_root, res_dir, iou_threshold=0.0)
    with pytest.raises(FileNotFoundError, match="results folder"):
        evaluate(gt_root, tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no sequence"):
        evaluate(res_dir, res_dir)


def test_report_outputs(dirs, tmp_path):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "seq1", [_gt_row(f, 1, BOX_A) for f in range(1, 5)], 4)
    _write_res(res_dir, "seq1", [_res_row(f, 1, BOX_A) for f in (1, 2, 4)] + [_res_row(3, 5, BOX_B)])
    report = evaluate(gt_root, res_dir)

    table = report.to_table().splitlines()
    assert table[0].split() == ["Sequence", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "MOTP",
                                "DetRe", "DetPr", "FP", "FN", "Frag"]  # fmt: skip
    assert table[1].split() == ["seq1", "67.1", "60.0", "75.0", "50.0", "75.0", "0", "100.0",
                                "75.0", "75.0", "1", "1", "1"]  # fmt: skip
    assert table[2].split()[0] == "COMBINED"
    assert len({len(line) for line in table}) == 1  # fixed width
    with pytest.raises(ValueError, match="unknown metric"):
        report.to_table(columns=["HOTA", "XYZ"])

    out = tmp_path / "out"
    report.to_json(out / "metrics.json")
    data = json.loads((out / "metrics.json").read_text())
    assert data["combined"]["MOTA"] == pytest.approx(0.5)
    assert data["per_sequence"]["seq1"]["IDSW"] == 0
    assert EvalReport(**data) == report

    report.to_csv(out / "metrics.csv")
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("name,HOTA,DetA,AssA")
    assert [line.split(",")[0] for line in lines[1:]] == ["seq1", "COMBINED"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "metrics.json"]  # no temp files left


def test_ids_repeat_across_classes(dirs):
    gt_root, res_dir = dirs
    # A pedestrian and a car both numbered 1 (identities are (class, id) pairs), tracked perfectly.
    gt = [_gt_row(f, 1, BOX_A, cls=1) for f in (1, 2)] + [_gt_row(f, 1, BOX_B, cls=3) for f in (1, 2)]
    _write_seq(gt_root, "seq1", gt, 2)
    _write_res(
        res_dir,
        "seq1",
        [_res_row(f, 1, BOX_A, cls=1) for f in (1, 2)] + [_res_row(f, 1, BOX_B, cls=3) for f in (1, 2)],
    )
    for classes in (None, [1, 3]):
        m = evaluate(gt_root, res_dir, classes=classes).combined
        assert (m["GT_IDs"], m["IDs"], m["IDSW"]) == (2, 2, 0)
        assert m["HOTA"] == pytest.approx(1.0)
        assert m["IDF1"] == pytest.approx(1.0)


def _mot15_gt_rows():
    """TUD-Stadtmitte-like MOT15 ground truth: 10 columns, the last three world coordinates (metres).

    Two pedestrians over 4 frames; their world x/y change every frame and are not integers, so read as
    class/visibility they would give a new (class, id) identity per frame. Object 2 is not evaluated in
    frame 4 (flag 0).
    """
    rows = []
    for f in range(1, 5):
        rows.append(f"{f},1,{BOX_A[0]},{BOX_A[1]},{BOX_A[2]},{BOX_A[3]},1,{4.4852 + 0.31 * f:.4f},5.5016,0")
        flag = 0 if f == 4 else 1
        rows.append(
            f"{f},2,{BOX_B[0]},{BOX_B[1]},{BOX_B[2]},{BOX_B[3]},{flag},12.621,{10.628 - 0.2 * f:.3f},0"
        )
    return rows


def test_mot15_world_coordinates_are_not_classes(dirs):
    gt_root, res_dir = dirs
    _write_seq(gt_root, "TUD-like", _mot15_gt_rows(), 4)
    rows = [_res_row(f, 1, BOX_A) for f in range(1, 5)] + [_res_row(f, 2, BOX_B) for f in range(1, 4)]
    _write_res(res_dir, "TUD-like", rows)
    m = evaluate(gt_root, res_dir).combined
    # The ground truth scored against itself (flag-0 row left out): one identity per object, IDF1 = 1.
    assert (m["GT_IDs"], m["GT_Dets"], m["IDs"]) == (2, 7, 2)
    for key in ("IDF1", "HOTA", "MOTA"):
        assert m[key] == pytest.approx(1.0), key
    assert m["IDSW"] == 0
    # Pedestrians: evaluating class 1 gives the same.
    assert evaluate(gt_root, res_dir, classes=[1]).combined["IDF1"] == pytest.approx(1.0)
