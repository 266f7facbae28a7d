"""Identity stitching of a long source tracked in chunks (``--chunk-frames N --chunk-overlap K``).

The rule. Chunk ``c`` owns frame positions ``[c·N, (c+1)·N)`` and is tracked from ``K`` frames earlier,
so in those ``K`` *overlap frames* both chunk ``c − 1`` (which owns them) and chunk ``c`` (warming up)
have tracks. The result takes every frame's rows from the chunk that owns it; a track ``b`` of chunk
``c`` inherits the global id of the track ``a`` of chunk ``c − 1`` it matches:

1. for every pair ``(a, b)``, ``votes[a, b]`` = the overlap frames in which both have a box and their
   IoU is at least ``iou_thresh`` (0.5);
2. a one-to-one assignment maximising the votes (Hungarian, ``scipy.optimize.linear_sum_assignment``);
3. a pair is kept when its votes are at least half of the overlap frames in which ``b`` has a box;
   every other track of chunk ``c`` gets a new id (in order of first appearance).

Without overlap rows (always with ``K = 0``) there are no votes; instead a *motion bridge* joins a track of
chunk ``c − 1`` last seen at most 30 frames before a track of chunk ``c`` starts (within 30 frames of the
border) when its last box, moved at its last velocity, overlaps the new track's first box by IoU ≥ 0.3
(Hungarian). Costs of both, measured, in docs/DISTRIBUTED.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["stitch_chunks", "STITCH_IOU", "BRIDGE_IOU", "BRIDGE_FRAMES"]

STITCH_IOU = 0.5  # two boxes of one frame are the same object from this IoU up
BRIDGE_IOU = 0.3  # a lost track's extrapolated box and a new track's first box: same object from here
BRIDGE_FRAMES = 30  # the longest gap bridged (ByteTrack's default lost-track buffer at 30 fps)


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a: [M, 4]`` and ``b: [N, 4]``, MOT ``xywh`` → ``[M, N]``."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _by_frame(rows: Sequence[tuple]) -> dict[int, list[tuple]]:
    frames: dict[int, list[tuple]] = defaultdict(list)
    for r in rows:
        frames[int(r[0])].append(r)
    return frames


def _match(prev: dict[int, list[tuple]], cur: dict[int, list[tuple]], iou_thresh: float) -> dict[int, int]:
    """Local id of the current chunk → global id of the previous one, by votes in the shared frames."""
    from scipy.optimize import linear_sum_assignment

    votes: dict[tuple[int, int], int] = defaultdict(int)
    present: dict[int, int] = defaultdict(int)
    for frame, cur_rows in cur.items():
        for r in cur_rows:
            present[int(r[1])] += 1
        prev_rows = prev.get(frame, [])
        if not prev_rows:
            continue
        iou = _iou_xywh(
            np.array([r[2:6] for r in prev_rows], float), np.array([r[2:6] for r in cur_rows], float)
        )
        for i, j in zip(*np.nonzero(iou >= iou_thresh), strict=True):
            votes[(int(prev_rows[i][1]), int(cur_rows[j][1]))] += 1
    if not votes:
        return {}
    a_ids = sorted({a for a, _ in votes})
    b_ids = sorted({b for _, b in votes})
    table = np.zeros((len(a_ids), len(b_ids)))
    for (a, b), v in votes.items():
        table[a_ids.index(a), b_ids.index(b)] = v
    rows_i, cols_j = linear_sum_assignment(-table)
    out = {}
    for i, j in zip(rows_i, cols_j, strict=True):
        b = b_ids[j]
        if table[i, j] > 0 and 2 * table[i, j] >= present[b]:
            out[b] = a_ids[i]
    return out


def _last_seen(frames: dict[int, list[tuple]]) -> dict[int, list[tuple]]:
    """Per track id, its rows in frame order."""
    tracks: dict[int, list[tuple]] = defaultdict(list)
    for f in sorted(frames):
        for r in frames[f]:
            tracks[int(r[1])].append(r)
    return tracks


def _bridge(
    prev: dict[int, list[tuple]],
    rows: Sequence[tuple],
    skip_prev: set[int],
    skip_cur: set[int],
    border: int,
    window: int,
    iou_thresh: float,
) -> dict[int, int]:
    """Local id → global id for objects hidden across a border.

    A track ``b`` of this chunk that starts before ``border + window`` and a track ``a`` of the previous
    chunk last seen 1 to ``window`` frames before ``b`` starts are the same object when ``a``'s last box,
    moved at its last velocity to ``b``'s first frame, overlaps ``b``'s first box by ``iou_thresh``
    (one-to-one, Hungarian on the IoU) — the lost-track recovery of one-piece tracking, without the
    appearance embeddings the result rows do not carry.
    """
    from scipy.optimize import linear_sum_assignment

    lost = {a: rs for a, rs in _last_seen(prev).items() if a not in skip_prev}
    firsts: dict[int, tuple] = {}
    for r in sorted(rows, key=lambda r: int(r[0])):
        firsts.setdefault(int(r[1]), r)
    new = {b: r for b, r in firsts.items() if b not in skip_cur and int(r[0]) < border + window}
    if not lost or not new:
        return {}
    a_ids, b_ids = sorted(lost), sorted(new)
    table = np.zeros((len(a_ids), len(b_ids)))
    for i, a in enumerate(a_ids):
        last, f_last = np.array(lost[a][-1][2:6], float), int(lost[a][-1][0])
        velocity = np.zeros(4)
        if len(lost[a]) > 1:
            before = lost[a][-2]
            velocity[:2] = (last[:2] - np.array(before[2:4], float)) / max(f_last - int(before[0]), 1)
        for j, b in enumerate(b_ids):
            gap = int(new[b][0]) - f_last
            if 0 < gap <= window:
                predicted = last + velocity * gap
                table[i, j] = _iou_xywh(predicted[None], np.array([new[b][2:6]], float))[0, 0]
    rows_i, cols_j = linear_sum_assignment(-table)
    return {b_ids[j]: a_ids[i] for i, j in zip(rows_i, cols_j, strict=True) if table[i, j] >= iou_thresh}


def stitch_chunks(
    chunks: Sequence[tuple[int | None, Sequence[tuple]]],
    iou_thresh: float = STITCH_IOU,
    bridge_frames: int = BRIDGE_FRAMES,
    bridge_iou: float = BRIDGE_IOU,
) -> list[tuple]:
    """Joins the rows of consecutive chunks of one source into one set of identities.

    Args:
        chunks: per chunk, in order, ``(own_from, rows)``: the frame id from which the chunk owns its rows
            (``None`` when the chunk read no frame) and its rows ``(frame, id, x, y, w, h, score, ...)``
            with MOT ``xywh`` boxes and ids local to the chunk.
        iou_thresh: the IoU from which two boxes of one overlap frame vote for the same identity.
        bridge_frames, bridge_iou: the motion bridge of a chunk without overlap rows (0 frames: off).

    Returns:
        The rows of the whole source with global ids (``frame, id, x, y, w, h, score, ...``), in order.
    """
    out: list[tuple] = []
    next_id = 1
    prev_owned: dict[int, list[tuple]] = {}
    for c, (own_from, rows) in enumerate(chunks):
        if own_from is None:
            continue
        owned = [r for r in rows if c == 0 or int(r[0]) >= own_from]
        overlap = [r for r in rows if c > 0 and int(r[0]) < own_from]
        mapping = _match(prev_owned, _by_frame(overlap), iou_thresh) if overlap else {}
        if c > 0 and bridge_frames and not overlap:  # no overlap evidence (K = 0): motion across the border
            seen = {int(r[1]) for r in overlap}
            mapping.update(
                _bridge(
                    prev_owned,
                    owned,
                    set(mapping.values()),
                    seen | set(mapping),
                    own_from,
                    bridge_frames,
                    bridge_iou,
                )
            )
        mapped = []
        for r in sorted(owned, key=lambda r: (int(r[0]), int(r[1]))):
            local = int(r[1])
            if local not in mapping:
                mapping[local] = next_id
                next_id += 1
            mapped.append((r[0], mapping[local], *r[2:]))
        out.extend(mapped)
        prev_owned = _by_frame(mapped)
    return out
