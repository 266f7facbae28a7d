"""Sinks: MOT result rows (class column), JSON lines, close vs abort (no partial file left)."""

import json
from pathlib import Path

import numpy as np

from ibntrack.data.motio import read_results
from ibntrack.engine.sinks import JsonLinesSink, MotSink, open_sinks, sink_paths

FRAME = np.zeros((8, 8, 3), np.uint8)


class _T:
    """The fields of an ``ibntrack.tracking.Track`` that a sink reads."""

    def __init__(self, track_id: int, box: list[float], score: float, cls: int) -> None:
        self.track_id, self.box, self.score, self.cls = track_id, np.asarray(box, np.float32), score, cls


def _tracks() -> list:
    return [_T(3, [10, 20, 40, 80], 0.9, 1), _T(5, [0, 0, 5, 5], 0.5, 0)]


def test_mot_sink_writes_xywh_rows_and_mot_class_ids(tmp_path: Path) -> None:
    sink = MotSink(tmp_path / "s.txt", ["pedestrian", "car"])
    sink.write(1, FRAME, _tracks())
    sink.write(2, FRAME, _tracks()[:1])
    assert not (tmp_path / "s.txt").exists()  # written on close only
    sink.close()
    rows = read_results(tmp_path / "s.txt")
    np.testing.assert_allclose(rows[0], [1, 3, 10, 20, 30, 60, 0.9], rtol=1e-6)
    assert rows.shape == (3, 7) and sink.ids == {3, 5}
    classes = [line.split(",")[7] for line in (tmp_path / "s.txt").read_text().splitlines()]
    assert classes == ["3", "1", "3"]  # car -> 3, pedestrian -> 1


def test_single_class_results_carry_minus_one(tmp_path: Path) -> None:
    sink = MotSink(tmp_path / "s.txt", ["object"])
    sink.write(1, FRAME, _tracks())
    sink.close()
    assert {line.split(",")[7] for line in (tmp_path / "s.txt").read_text().splitlines()} == {"-1"}


def test_json_lines_close_and_abort(tmp_path: Path) -> None:
    good = JsonLinesSink(tmp_path / "a.jsonl")
    good.write(7, FRAME, _tracks())
    good.close()
    (line,) = (tmp_path / "a.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["frame"] == 7 and [t["id"] for t in record["tracks"]] == [3, 5]
    assert record["tracks"][0]["box_xyxy"] == [10.0, 20.0, 40.0, 80.0]
    bad = JsonLinesSink(tmp_path / "b.jsonl")
    bad.write(1, FRAME, _tracks())
    bad.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]  # no file, no temporary


def test_open_sinks_matches_sink_paths(tmp_path: Path) -> None:
    mot, sinks = open_sinks(tmp_path, "seq", 30.0, ["object"], save_video=False, save_json=True)
    assert sinks[0] is mot
    for sink in sinks:
        sink.write(1, FRAME, [])
        sink.close()
    expected = sink_paths(tmp_path, "seq", save_video=False, save_json=True)
    assert [s.path for s in sinks] == expected and all(p.is_file() for p in expected)
