"""Identity stitching across chunks and chunk planning, on hand-made rows."""

from __future__ import annotations

from ibntrack.distributed.plan import Planned, chunk_jobs
from ibntrack.distributed.stitch import stitch_chunks


def _rows(track_id, box, frames):
    return [(f, track_id, *box, 0.9, -1) for f in frames]


A, B, C, D = (0, 0, 10, 10), (20, 0, 10, 10), (60, 0, 10, 10), (80, 0, 10, 10)


def test_overlap_votes_carry_ids_and_weak_matches_get_new_ones():
    chunk0 = _rows(1, A, range(1, 5)) + _rows(2, B, range(1, 5)) + _rows(3, C, range(1, 5))
    # chunk 1 reads frames 2..6 (overlap 2, 3, 4) and owns 5, 6
    chunk1 = (
        _rows(5, B, range(2, 7))  # IoU 1 with id 2 in all three overlap frames -> id 2
        + _rows(6, A, range(4, 7))  # seen in one overlap frame, matching id 1 there: 1 vote of 1 -> id 1
        + _rows(7, (40, 0, 10, 10), range(5, 7))  # not in the overlap -> new id
        + [(2, 9, *C, 0.9, -1)]  # id 9: matches id 3 in frame 2 only ...
        + _rows(9, D, range(3, 7))  # ... and is elsewhere in frames 3, 4: 1 vote of 3 < half -> new id
    )
    out = stitch_chunks([(1, chunk0), (5, chunk1)])
    assert [r for r in out if r[0] <= 4] == sorted(chunk0, key=lambda r: (r[0], r[1]))
    late = {(r[0], r[1]): r[2:6] for r in out if r[0] >= 5}
    # frame 5 in local-id order 5, 6, 7, 9: mapped 2, 1; new ids 4, 5 in order of first appearance
    assert late == {
        (5, 2): B, (5, 1): A, (5, 4): (40, 0, 10, 10), (5, 5): D,
        (6, 2): B, (6, 1): A, (6, 4): (40, 0, 10, 10), (6, 5): D,
    }  # fmt: skip


def test_without_overlap_and_without_the_bridge_no_identity_crosses_a_border():
    out = stitch_chunks([(1, _rows(1, A, [1, 2])), (3, _rows(1, A, [3, 4]))], bridge_frames=0)
    assert [r[1] for r in out] == [1, 1, 2, 2]
    # with the bridge (default) the still object is the same one
    assert [r[1] for r in stitch_chunks([(1, _rows(1, A, [1, 2])), (3, _rows(1, A, [3, 4]))])] == [1, 1, 1, 1]


def test_a_chunk_matches_the_previous_chunk_only():
    # id 1 of chunk 0 continues as local 1 of chunk 1, which continues as local 1 of chunk 2
    chunks = [(1, _rows(1, A, [1, 2])), (3, _rows(1, A, [2, 3, 4])), (5, _rows(1, A, [4, 5, 6]))]
    out = stitch_chunks(chunks)
    assert [r[0] for r in out] == [1, 2, 3, 4, 5, 6] and {r[1] for r in out} == {1}


def test_chunk_positions():
    jobs = chunk_jobs(Planned("v", "v.mp4", 10), chunk_frames=4, overlap=2)
    assert [(j.chunk, j.read_start, j.own_start, j.end) for j in jobs] == [
        (0, 0, 0, 4),
        (1, 2, 4, 8),
        (2, 6, 8, 10),
    ]
    assert [j.chunk for j in chunk_jobs(Planned("v", "v.mp4", 10), 10, 2)] == [None]  # short enough: whole
    assert [j.chunk for j in chunk_jobs(Planned("v", "v.mp4", None), 4, 2)] == [None]  # unknown length
    assert len(chunk_jobs(Planned("v", "v.mp4", 100), 4, 0, max_frames=9)) == 3  # 9 frames -> 3 chunks


def test_without_overlap_a_motion_bridge_joins_tracks_hidden_at_the_border():
    # id 1 moves +2 px/frame in x, last seen at frame 4 at x = 6; local 3 starts at frame 7 at x = 12:
    # predicted x at frame 7 = 6 + 2 * 3 = 12 -> IoU 1 -> joined. Local 4 starts far away -> new id.
    chunk0 = [(f, 1, 2.0 * (f - 1), 0, 10, 10, 0.9, -1) for f in (1, 2, 3, 4)]
    chunk1 = [
        (7, 3, 12.0, 0, 10, 10, 0.9, -1),
        (8, 3, 14.0, 0, 10, 10, 0.9, -1),
        (7, 4, 90.0, 0, 10, 10, 0.9, -1),
    ]
    out = stitch_chunks([(1, chunk0), (5, chunk1)])
    assert [(r[0], r[1], r[2]) for r in out if r[0] >= 7] == [(7, 1, 12.0), (7, 2, 90.0), (8, 1, 14.0)]
    # a gap longer than the bridge, or the bridge off: a new id
    assert {r[1] for r in stitch_chunks([(1, chunk0), (5, chunk1)], bridge_frames=2) if r[0] == 8} == {2}
    assert {r[1] for r in stitch_chunks([(1, chunk0), (5, chunk1)], bridge_frames=0) if r[0] == 8} == {2}
