"""Globally unique identity labels across sequences and datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ibntrack.data.identities import assign_global_ids
from ibntrack.data.mot import Annotations, Sequence


def _seq(name: str, parent: str, frames: dict[int, list[int]]) -> Sequence:
    ann = {
        f: Annotations(
            boxes=np.zeros((len(ids), 4), np.float32),
            ids=np.asarray(ids, np.int64),
            classes=np.zeros(len(ids), np.int64),
            visibility=np.ones(len(ids), np.float32),
        )
        for f, ids in frames.items()
    }
    path = Path("/data") / parent / name
    return Sequence(name, path, path / "img1", 30.0, 64, 64, 10, annotations=ann)


def test_offsets_across_two_datasets(caplog):
    a = _seq("A-01", "dsA", {1: [1, 2], 2: [2, 5]})  # ids 1, 2, 5
    b = _seq("A-02", "dsA", {1: [1]})  # id 1 again, but another person
    c = _seq("B-01", "dsB", {3: [4, 9], 4: [9, -1]})  # ids 4, 9; -1 unknown
    with caplog.at_level("INFO", logger="ibntrack.data.identities"):
        idmap = assign_global_ids([a, b, c])
    assert idmap.num_ids == 6
    assert idmap.offsets == (0, 3, 4)
    assert idmap.counts == {"A-01": 3, "A-02": 1, "B-01": 2}
    labels = [
        idmap.to_global(0, np.array([1, 2, 5])),
        idmap.to_global(1, np.array([1])),
        idmap.to_global(2, np.array([4, 9])),
    ]
    flat = np.concatenate(labels)
    assert flat.tolist() == [0, 1, 2, 3, 4, 5]  # unique, dense
    assert idmap.to_global(2, np.array([-1, 7])).tolist() == [-1, -1]  # unknown and unseen ids
    assert "dsA 4 (2 seq)" in caplog.text and "dsB 2 (1 seq)" in caplog.text


def test_repeated_names_and_empty_sequence():
    a = _seq("S", "x", {1: [3]})
    b = _seq("S", "y", {})
    idmap = assign_global_ids([a, b], log=False)
    assert idmap.num_ids == 1 and idmap.counts == {"S": 1, "S#2": 0}
    assert idmap.to_global(1, np.array([3])).tolist() == [-1]
