"""Detection simulator: noisy detections and embeddings from ground-truth trajectories.

It lets the tracker be benchmarked on real MOTChallenge trajectories without a trained network. The noise
model, per ground-truth object of visibility ``v ∈ [0, 1]`` (fraction not occluded), is:

- **misses**: dropped with probability ``p(v) = miss_prob_visible + (miss_prob_occluded −
  miss_prob_visible)·(1 − v)^miss_power`` (rising as visibility falls);
- **box jitter**: centre ``+ N(0, center_jitter·(w, h))``, size ``· exp(N(0, size_jitter))`` — noise
  proportional to the box size;
- **score**: ``Beta`` with mean ``score_mean_occluded + (score_mean_visible − score_mean_occluded)·v`` and
  concentration ``score_concentration`` (high for visible, lower for occluded objects);
- **embedding**: every identity has a fixed random unit prototype in ``emb_dim`` dimensions; a detection
  gets ``normalize(prototype + σ(v)·n)``, ``n ~ N(0, I/emb_dim)`` (so ``‖n‖ ≈ 1``), with
  ``σ(v) = emb_noise_occluded + (emb_noise_visible − emb_noise_occluded)·v`` rising as visibility falls;
- **false positives**: ``Poisson(fp_rate)`` per frame, boxes sized like a random ground-truth box of the
  sequence (times ``exp(N(0, fp_size_jitter))``), placed uniformly in the scene extent, scores from
  ``Beta(fp_score_a, fp_score_b)`` (low-ish), random unit embeddings, classes drawn from the ground truth.

Options that make it harsher (all off by default; :meth:`DetSimConfig.hostile` turns them on):

- **geometric occlusion** (``geometric_occlusion``): the visibility used above is
  ``min(v_gt, 1 − covered)``, where ``covered = min(1, Σ_j area(b ∩ b_j) / area(b))`` over the boxes
  ``b_j`` standing in front (larger bottom edge ``y2``: nearer the camera on a ground plane). MOT15 has no
  visibility column, so without this every target would look fully visible there.
- **correlated identities** (``identity_similarity`` ``s``): prototypes are
  ``normalize(√s·c + √(1 − s)·u_i)`` with one shared unit vector ``c``, so two identities have cosine ≈ ``s``
  (a real ReID space is not orthogonal).
- **the occluder shows through** (``emb_occluder_mix`` ``m``): an occluded detection's embedding is
  built from ``(1 − w)·p_own + w·p_occluder`` with ``w = m·(1 − v)``, ``p_occluder`` the prototype of
  the box covering it most.
- **duplicates** (``dup_rate``): each detected object gets, with this probability, a second box shifted by
  ``N(0, dup_shift)`` of its size, scored ``Beta(fp_score_a, fp_score_b)``, with the object's embedding.

Embeddings come from their own random stream (split from ``rng`` at the start), so detections simulated
with the same seed and different embedding settings have identical boxes, scores and classes. Detections
of a frame are shuffled. The same seed gives the same output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ibntrack.data.motio import read_gt

__all__ = ["DetSimConfig", "GtFrame", "SimFrame", "load_mot_gt", "occlusion", "simulate_detections"]

#: ``(boxes [M, 4] xyxy, ids [M], visibility [M], classes [M])`` of one frame.
GtFrame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: ``(boxes [N, 4] float32 xyxy, scores [N] float32, embeddings [N, E] float32, classes [N] int64)``.
SimFrame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_MIN_SIZE = 1.0  # pixels; simulated boxes are at least this wide and tall
_SCORE_EPS = 1e-3  # Beta parameters stay positive; scores stay inside (0, 1)


@dataclass(frozen=True)
class DetSimConfig:
    """Noise model of :func:`simulate_detections` (see the module docstring for the formulas).

    Attributes:
        emb_dim: embedding dimension ``E``.
        center_jitter: std of the centre shift, as a fraction of the box width / height.
        size_jitter: std of the log-scale factor applied to width and height.
        miss_prob_visible: miss probability of a fully visible object.
        miss_prob_occluded: miss probability of a fully occluded object (visibility 0).
        miss_power: shape of the miss curve; > 1 keeps slightly occluded objects nearly always detected.
        score_mean_visible: mean score of a fully visible object.
        score_mean_occluded: mean score of a fully occluded object.
        score_concentration: ``a + b`` of the score Beta distribution (larger = less spread).
        emb_noise_visible: embedding noise ``σ`` at visibility 1.
        emb_noise_occluded: embedding noise ``σ`` at visibility 0.
        fp_rate: mean number of false positives per frame (Poisson).
        fp_score_a: Beta ``a`` of false-positive scores.
        fp_score_b: Beta ``b`` of false-positive scores (mean ``a / (a + b)``).
        fp_size_jitter: std of the log-scale factor of false-positive box sizes.
        geometric_occlusion: lower visibility by the overlap of boxes in front (module docstring).
        identity_similarity: cosine between two identities' prototypes, in ``[0, 1)``.
        emb_occluder_mix: how much of the occluder's prototype an occluded embedding takes, ``[0, 1]``.
        dup_rate: probability that a detected object also gets a duplicate low-score box, ``[0, 1]``.
        dup_shift: std of a duplicate's centre shift, as a fraction of the box width / height.
    """

    emb_dim: int = 64
    center_jitter: float = 0.03
    size_jitter: float = 0.05
    miss_prob_visible: float = 0.02
    miss_prob_occluded: float = 0.9
    miss_power: float = 2.0
    score_mean_visible: float = 0.85
    score_mean_occluded: float = 0.35
    score_concentration: float = 12.0
    emb_noise_visible: float = 0.3
    emb_noise_occluded: float = 1.2
    fp_rate: float = 1.0
    fp_score_a: float = 2.0
    fp_score_b: float = 5.0
    fp_size_jitter: float = 0.2
    geometric_occlusion: bool = False
    identity_similarity: float = 0.0
    emb_occluder_mix: float = 0.0
    dup_rate: float = 0.0
    dup_shift: float = 0.25

    @classmethod
    def hostile(cls, emb_dim: int = 64, **changes: object) -> DetSimConfig:
        """A harsher detector than the defaults, closer to a real one in crowds (the benchmark's).

        Occlusion from box overlap, most occluded objects missed or scored low, 2 false positives per
        frame, 5 % duplicates, correlated identities (cosine 0.3), embeddings clean when visible and close
        to random (noise 3, occluder mixed in) when hidden. ``changes`` override single fields.
        """
        base = dict(
            emb_dim=emb_dim,
            center_jitter=0.04,
            size_jitter=0.06,
            miss_prob_visible=0.03,
            miss_prob_occluded=0.95,
            miss_power=1.5,
            score_mean_visible=0.8,
            score_mean_occluded=0.2,
            emb_noise_visible=0.3,
            emb_noise_occluded=3.0,
            fp_rate=2.0,
            geometric_occlusion=True,
            identity_similarity=0.3,
            emb_occluder_mix=0.5,
            dup_rate=0.05,
        )
        base.update(changes)
        return cls(**base)

    def __post_init__(self) -> None:
        if isinstance(self.emb_dim, bool) or not isinstance(self.emb_dim, int) or self.emb_dim < 1:
            raise ValueError(f"emb_dim must be an int >= 1, got {self.emb_dim!r}")
        for name in ("miss_prob_visible", "miss_prob_occluded"):
            _check(name, getattr(self, name), lo=0.0, hi=1.0)
        for name in ("score_mean_visible", "score_mean_occluded"):
            _check(name, getattr(self, name), lo=0.0, hi=1.0, open_interval=True)
        for name in ("center_jitter", "size_jitter", "emb_noise_visible", "emb_noise_occluded", "fp_rate"):
            _check(name, getattr(self, name), lo=0.0)
        _check("fp_size_jitter", self.fp_size_jitter, lo=0.0)
        _check("dup_shift", self.dup_shift, lo=0.0)
        for name in ("emb_occluder_mix", "dup_rate"):
            _check(name, getattr(self, name), lo=0.0, hi=1.0)
        _check("identity_similarity", self.identity_similarity, lo=0.0, hi=1.0)
        if self.identity_similarity >= 1.0:
            raise ValueError(f"identity_similarity must be < 1, got {self.identity_similarity!r}")
        if not isinstance(self.geometric_occlusion, bool):
            raise ValueError(f"geometric_occlusion must be a bool, got {self.geometric_occlusion!r}")
        for name in ("miss_power", "score_concentration", "fp_score_a", "fp_score_b"):
            _check(name, getattr(self, name), lo=0.0, open_interval=True)


def _check(name: str, value: float, lo: float, hi: float = np.inf, open_interval: bool = False) -> None:
    ok = isinstance(value, int | float) and np.isfinite(value)
    ok = ok and ((lo < value < hi) if open_interval else (lo <= value <= hi))
    if not ok:
        bounds = f"({lo}, {hi})" if open_interval else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")


def simulate_detections(
    gt_frames: Mapping[int, GtFrame],
    rng: np.random.Generator | int,
    config: DetSimConfig | None = None,
    scene_extent: tuple[float, float, float, float] | None = None,
) -> dict[int, SimFrame]:
    """Simulate a detector with appearance embeddings on ground-truth trajectories.

    Args:
        gt_frames: frame → ``(boxes [M, 4] xyxy pixels, ids [M] int, visibility [M] in [0, 1],
            classes [M] int)``. Only these frames get detections (include empty frames to get false
            positives there).
        rng: a ``numpy.random.Generator`` or an integer seed.
        config: noise model (defaults: :class:`DetSimConfig`).
        scene_extent: ``(x1, y1, x2, y2)`` where false positives are placed, e.g. the image
            ``(0, 0, width, height)``; default: the bounding box of all ground-truth boxes.

    Returns:
        frame → ``(boxes [N, 4] float32 xyxy, scores [N] float32, embeddings [N, E] float32 unit rows,
        classes [N] int64)``, frames in increasing order.
    """
    config = config if config is not None else DetSimConfig()
    if not isinstance(rng, np.random.Generator):
        if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
            raise ValueError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")
        rng = np.random.default_rng(int(rng))
    frames = {int(f): _check_gt_frame(f, gt) for f, gt in gt_frames.items()}
    all_boxes = [gt[0] for gt in frames.values() if len(gt[0])]
    all_ids = (
        np.unique(np.concatenate([gt[1] for gt in frames.values()])) if frames else np.zeros(0, np.int64)
    )
    all_classes = np.concatenate([gt[3] for gt in frames.values()]) if frames else np.zeros(0, np.int64)
    stacked = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4))
    if scene_extent is None:
        extent = (*stacked[:, :2].min(0), *stacked[:, 2:].max(0)) if len(stacked) else (0.0, 0.0, 1.0, 1.0)
    else:
        extent = tuple(float(v) for v in scene_extent)
        if len(extent) != 4 or not (extent[2] > extent[0] and extent[3] > extent[1]):
            raise ValueError(
                f"scene_extent must be (x1, y1, x2, y2) with x2 > x1, y2 > y1, got {scene_extent}"
            )
    sizes = stacked[:, 2:] - stacked[:, :2] if len(stacked) else np.ones((1, 2)) * _MIN_SIZE  # [K, 2] w, h
    fp_classes = np.unique(all_classes) if all_classes.size else np.zeros(1, np.int64)

    emb_rng = np.random.default_rng(rng.integers(0, 2**63))  # own stream: boxes never depend on it
    protos = _unit(emb_rng.normal(size=(all_ids.size, config.emb_dim)))  # [I, E], one per identity
    if config.identity_similarity > 0:
        common = _unit(emb_rng.normal(size=(1, config.emb_dim)))
        s = config.identity_similarity
        protos = _unit(np.sqrt(s) * common + np.sqrt(1.0 - s) * protos)
    proto_of = {int(i): protos[k] for k, i in enumerate(all_ids)}
    out: dict[int, SimFrame] = {}
    for frame in sorted(frames):
        boxes, ids, vis, classes = frames[frame]
        tp = _true_positives(boxes, ids, vis, classes, proto_of, rng, emb_rng, config)
        fp = _false_positives(sizes, extent, fp_classes, rng, emb_rng, config)
        merged = [np.concatenate([a, b]) for a, b in zip(tp, fp, strict=True)]
        order = rng.permutation(len(merged[1]))
        out[frame] = (
            merged[0][order].astype(np.float32),
            merged[1][order].astype(np.float32),
            merged[2][order].astype(np.float32),
            merged[3][order].astype(np.int64),
        )
    return out


def _true_positives(
    boxes: np.ndarray,
    ids: np.ndarray,
    vis: np.ndarray,
    classes: np.ndarray,
    proto_of: Mapping[int, np.ndarray],
    rng: np.random.Generator,
    emb_rng: np.random.Generator,
    cfg: DetSimConfig,
) -> SimFrame:
    """Detected ground-truth objects of one frame (plus their duplicates)."""
    m = len(boxes)
    occluder = np.full(m, -1, dtype=np.int64)  # position of the box covering each one most
    if cfg.geometric_occlusion and m > 1:
        covered, occluder = occlusion(boxes)
        vis = np.minimum(vis, 1.0 - covered)
    occluder_ids = np.where(occluder >= 0, ids[np.maximum(occluder, 0)], -1)
    p_miss = (
        cfg.miss_prob_visible
        + (cfg.miss_prob_occluded - cfg.miss_prob_visible) * (1.0 - vis) ** cfg.miss_power
    )
    keep = rng.random(m) >= p_miss
    boxes, ids, vis, classes = boxes[keep], ids[keep], vis[keep], classes[keep]
    occluder_ids = occluder_ids[keep]
    k = len(boxes)
    wh = boxes[:, 2:] - boxes[:, :2]  # [k, 2]
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:]) + rng.normal(size=(k, 2)) * cfg.center_jitter * wh
    wh = np.maximum(wh * np.exp(rng.normal(size=(k, 2)) * cfg.size_jitter), _MIN_SIZE)
    det_boxes = np.concatenate([centre - 0.5 * wh, centre + 0.5 * wh], axis=1)

    mean = cfg.score_mean_occluded + (cfg.score_mean_visible - cfg.score_mean_occluded) * vis
    a = np.maximum(mean * cfg.score_concentration, _SCORE_EPS)
    b = np.maximum((1.0 - mean) * cfg.score_concentration, _SCORE_EPS)
    scores = np.clip(rng.beta(a, b), _SCORE_EPS, 1.0 - _SCORE_EPS) if k else np.zeros(0)

    sigma = cfg.emb_noise_occluded + (cfg.emb_noise_visible - cfg.emb_noise_occluded) * vis  # [k]
    protos = np.stack([proto_of[int(i)] for i in ids]) if k else np.zeros((0, cfg.emb_dim))
    if cfg.emb_occluder_mix > 0 and k:
        has = occluder_ids >= 0
        if has.any():
            w = (cfg.emb_occluder_mix * (1.0 - vis))[has, None]
            other = np.stack([proto_of[int(i)] for i in occluder_ids[has]])
            protos = protos.copy()
            protos[has] = _unit((1.0 - w) * protos[has] + w * other)
    noise = emb_rng.normal(size=(k, cfg.emb_dim)) / np.sqrt(cfg.emb_dim)
    emb = _unit(protos + sigma[:, None] * noise)
    if cfg.dup_rate > 0 and k:
        dup = np.flatnonzero(rng.random(k) < cfg.dup_rate)
        d_wh = det_boxes[dup, 2:] - det_boxes[dup, :2]
        d_c = (
            0.5 * (det_boxes[dup, :2] + det_boxes[dup, 2:])
            + rng.normal(size=(dup.size, 2)) * cfg.dup_shift * d_wh
        )
        d_wh = np.maximum(d_wh * np.exp(rng.normal(size=(dup.size, 2)) * cfg.dup_shift), _MIN_SIZE)
        d_boxes = np.concatenate([d_c - 0.5 * d_wh, d_c + 0.5 * d_wh], axis=1)
        d_scores = rng.beta(cfg.fp_score_a, cfg.fp_score_b, dup.size)
        det_boxes = np.concatenate([det_boxes, d_boxes])
        scores = np.concatenate([scores, d_scores])
        emb = np.concatenate([emb, emb[dup]])
        classes = np.concatenate([classes, classes[dup]])
    return det_boxes, scores, emb, classes


def occlusion(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much of each box the boxes in front of it cover, and which one covers it most.

    A box is in front of another when its bottom edge is lower in the image (larger ``y2``; ties: none).

    Args:
        boxes: ``[M, 4]`` xyxy.

    Returns:
        ``covered [M]`` in ``[0, 1]`` (``min(1, Σ intersections / own area)``, overlaps between occluders
        counted twice) and ``occluder [M]`` int64, the position of the front box with the largest
        intersection, or −1.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    m = b.shape[0]
    if m == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # [M, M]
    front = b[None, :, 3] > b[:, None, 3]  # [i, j]: j is in front of i
    inter = np.where(front, inter, 0.0)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    covered = np.minimum(inter.sum(axis=1) / area, 1.0)
    occluder = np.where(inter.max(axis=1) > 0, inter.argmax(axis=1), -1).astype(np.int64)
    return covered, occluder


def _false_positives(
    sizes: np.ndarray,
    extent: Sequence[float],
    fp_classes: np.ndarray,
    rng: np.random.Generator,
    emb_rng: np.random.Generator,
    cfg: DetSimConfig,
) -> SimFrame:
    """Spurious detections of one frame."""
    n = int(rng.poisson(cfg.fp_rate))
    x1, y1, x2, y2 = extent
    wh = sizes[rng.integers(0, len(sizes), n)] * np.exp(rng.normal(size=(n, 2)) * cfg.fp_size_jitter)
    wh = np.maximum(wh, _MIN_SIZE)
    centre = np.stack([rng.uniform(x1, x2, n), rng.uniform(y1, y2, n)], axis=1)
    boxes = np.concatenate([centre - 0.5 * wh, centre + 0.5 * wh], axis=1)
    scores = rng.beta(cfg.fp_score_a, cfg.fp_score_b, n)
    emb = _unit(emb_rng.normal(size=(n, cfg.emb_dim)))
    classes = fp_classes[rng.integers(0, len(fp_classes), n)]
    return boxes, scores, emb, classes


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check_gt_frame(frame: int, gt: GtFrame) -> GtFrame:
    if len(gt) != 4:
        raise ValueError(f"gt_frames[{frame}] must be (boxes, ids, visibility, classes), got {len(gt)} items")
    boxes = np.asarray(gt[0], dtype=np.float64).reshape(-1, 4)
    ids = np.asarray(gt[1], dtype=np.int64).reshape(-1)
    vis = np.clip(np.asarray(gt[2], dtype=np.float64).reshape(-1), 0.0, 1.0)
    classes = np.asarray(gt[3], dtype=np.int64).reshape(-1)
    if not (len(ids) == len(vis) == len(classes) == len(boxes)):
        raise ValueError(
            f"gt_frames[{frame}]: boxes, ids, visibility, classes must have the same length, got "
            f"{len(boxes)}, {len(ids)}, {len(vis)}, {len(classes)}"
        )
    return boxes, ids, vis, classes


def load_mot_gt(
    gt_path: str | Path,
    eval_only: bool = True,
    classes: Sequence[int] | None = (1,),
    num_frames: int | None = None,
) -> dict[int, GtFrame]:
    """Read a MOTChallenge ``gt.txt`` (``frame, id, x, y, w, h, flag, class, visibility``).

    Boxes are converted from top-left + size to xyxy without shifting the 1-based MOT pixel coordinates.
    The file is parsed by :func:`ibntrack.data.motio.read_gt`: files with six to eight columns and the
    10-column MOT15 layout (``frame, id, x, y, w, h, flag, x3d, y3d, z3d``: world coordinates, not class
    and visibility) get class 1 (pedestrian) and visibility 1; a class or visibility of −1 also reads as 1.

    Args:
        gt_path: path of ``gt.txt``.
        eval_only: keep only rows whose flag (column 7) is 1 (the rows MOTChallenge evaluates).
        classes: MOT class ids to keep; the returned class of a row is the position of its MOT class in
            this sequence (0-based). ``None`` keeps every row with its raw class id.
        num_frames: if given, frames ``1..num_frames`` are all present (empty ones included).

    Returns:
        frame → ``(boxes [M, 4] float32 xyxy, ids [M] int64, visibility [M] float32, classes [M] int64)``,
        frames in increasing order.

    Raises:
        ValueError: ``gt_path`` is not a file, or a malformed line
            (:class:`~ibntrack.data.motio.MOTFormatError`, naming the file and the line).
    """
    path = Path(gt_path)
    if not path.is_file():
        raise ValueError(f"gt_path {str(path)!r} is not a file")
    if num_frames is not None and num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames!r}")
    rows = read_gt(path)  # [M, 9] frame, id, x, y, w, h, flag, class, visibility
    n = rows.shape[0]
    flag = rows[:, 6]
    cls = np.where(rows[:, 7] < 0, 1, rows[:, 7]).astype(np.int64)
    vis = np.where(rows[:, 8] < 0, 1.0, rows[:, 8])
    keep = np.ones(n, dtype=bool)
    if eval_only:
        keep &= flag == 1
    labels = cls.copy()
    if classes is not None:
        classes = [int(c) for c in classes]
        keep &= np.isin(cls, classes)
        lookup = {c: k for k, c in enumerate(classes)}
        labels = np.array([lookup.get(int(c), -1) for c in cls], dtype=np.int64)
    rows, labels, vis = rows[keep], labels[keep], vis[keep]
    frame_ids = rows[:, 0].astype(np.int64)
    boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1).astype(np.float32)
    wanted = set(frame_ids.tolist())
    if num_frames is not None:
        wanted |= set(range(1, num_frames + 1))
    out: dict[int, GtFrame] = {}
    for frame in sorted(wanted):
        sel = frame_ids == frame
        out[frame] = (boxes[sel], rows[sel, 1].astype(np.int64), vis[sel].astype(np.float32), labels[sel])
    return out
