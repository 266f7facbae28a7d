"""Detection simulator and MOT gt reader."""

import numpy as np
import pytest

from ibntrack.eval.detsim import DetSimConfig, load_mot_gt, simulate_detections
from ibntrack.tracking.tracker import MultiObjectTracker


def _grid_gt(frames, n, visibility, moving=False):
    """``n`` objects on a grid (optionally walking right), all with the given visibility."""
    gt = {}
    for f in range(1, frames + 1):
        x = 60.0 * (np.arange(n) % 20) + (3.0 * f if moving else 0.0)
        y = 150.0 * (np.arange(n) // 20)
        boxes = np.stack([x, y, x + 30, y + 80], axis=1)
        gt[f] = (boxes, np.arange(1, n + 1), np.full(n, visibility), np.zeros(n, int))
    return gt


def test_deterministic_per_seed_and_shapes():
    gt = _grid_gt(5, 10, 0.7)
    a = simulate_detections(gt, 3)
    b = simulate_detections(gt, np.random.default_rng(3))
    c = simulate_detections(gt, 4)
    assert list(a) == [1, 2, 3, 4, 5]
    for f in a:
        for x, y in zip(a[f], b[f], strict=True):
            np.testing.assert_array_equal(x, y)
    assert any(a[f][0].shape != c[f][0].shape or not np.array_equal(a[f][0], c[f][0]) for f in a)
    boxes, scores, emb, classes = a[1]
    n = len(boxes)
    assert boxes.shape == (n, 4) and scores.shape == (n,) and emb.shape == (n, 64) and classes.shape == (n,)
    assert (boxes.dtype, scores.dtype, emb.dtype, classes.dtype) == (
        np.float32,
        np.float32,
        np.float32,
        np.int64,
    )
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert np.all((scores > 0) & (scores < 1)) and np.all(boxes[:, 2:] > boxes[:, :2])


def test_misses_rise_and_scores_fall_as_visibility_falls():
    cfg = DetSimConfig(fp_rate=0.0)
    counts, mean_scores = [], []
    for vis in (1.0, 0.6, 0.2):
        out = simulate_detections(_grid_gt(10, 100, vis), 0, cfg)
        counts.append(sum(len(d[0]) for d in out.values()))
        mean_scores.append(np.mean(np.concatenate([d[1] for d in out.values()])))
    # Expected misses out of 1000: 0.02 + 0.88·(1 − v)² -> 20, 161, 583.
    assert counts[0] > counts[1] > counts[2]
    assert counts[0] == pytest.approx(980, abs=25) and counts[2] == pytest.approx(417, abs=50)
    assert mean_scores[0] > mean_scores[1] > mean_scores[2]


def test_embeddings_cluster_by_identity():
    gt = _grid_gt(2, 4, 1.0)
    out = simulate_detections(gt, 1, DetSimConfig(fp_rate=0.0, miss_prob_visible=0.0))
    (b1, _, e1, _), (b2, _, e2, _) = out[1], out[2]
    same = np.argmin(np.abs(b1[:, None, 0] - b2[None, :, 0]), axis=1)  # static objects: match by x
    sims = e1 @ e2.T
    assert np.all(sims[np.arange(4), same] > 0.8)
    off = sims.copy()
    off[np.arange(4), same] = 0
    assert np.all(off < 0.6)


def test_false_positives_only():
    cfg = DetSimConfig(fp_rate=3.0, miss_prob_visible=1.0, miss_prob_occluded=1.0)
    out = simulate_detections(_grid_gt(500, 2, 1.0), 1, cfg, scene_extent=(0, 0, 640, 480))
    n = np.array([len(d[0]) for d in out.values()])
    assert n.mean() == pytest.approx(3.0, abs=0.25)  # std of the mean: 0.077
    boxes = np.concatenate([d[0] for d in out.values()])
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    assert np.all((centres >= 0) & (centres <= [640, 480]))
    assert np.mean(np.concatenate([d[1] for d in out.values()])) == pytest.approx(2 / 7, abs=0.03)


def test_tracker_runs_on_simulated_detections():
    gt = _grid_gt(30, 6, 0.9, moving=True)
    sim = simulate_detections(gt, 0, DetSimConfig(fp_rate=0.5))
    tracker = MultiObjectTracker()
    ids = set()
    for f in sorted(sim):
        ids.update(t.track_id for t in tracker.update(*sim[f]))
    assert 6 <= len(ids) <= 8  # six walkers, at most a couple of spurious tracks


def test_bad_arguments():
    with pytest.raises(ValueError, match="rng"):
        simulate_detections({}, "seed")
    with pytest.raises(ValueError, match="miss_prob_visible"):
        DetSimConfig(miss_prob_visible=1.5)
    with pytest.raises(ValueError, match="same length"):
        simulate_detections({1: (np.zeros((2, 4)), np.zeros(1), np.zeros(2), np.zeros(2))}, 0)


def test_load_mot_gt(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,1,10,20,30,40,1,1,0.5\n"
        "1,2,0,0,5,5,0,1,1.0\n"  # flag 0: not evaluated
        "3,1,12,20,30,40,1,1,1.0\n"
        "3,5,50,60,10,10,1,3,1.0\n"  # class 3 (car)
    )
    gt = load_mot_gt(path)
    assert list(gt) == [1, 3]
    boxes, ids, vis, classes = gt[1]
    np.testing.assert_allclose(boxes, [[10, 20, 40, 60]])
    np.testing.assert_array_equal(ids, [1])
    np.testing.assert_allclose(vis, [0.5])
    np.testing.assert_array_equal(classes, [0])
    assert len(load_mot_gt(path, eval_only=False)[1][0]) == 2
    multi = load_mot_gt(path, classes=(1, 3), num_frames=4)
    assert list(multi) == [1, 2, 3, 4] and len(multi[2][0]) == 0
    np.testing.assert_array_equal(multi[3][3], [0, 1])
    with pytest.raises(ValueError, match="gt_path"):
        load_mot_gt(tmp_path / "missing.txt")


def test_load_mot_gt_mot15_layout(tmp_path):
    # MOT15 (TUD-Stadtmitte-like): columns 8-10 are world coordinates, not class and visibility.
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,1,88,99,61.08,218.56,1,4.4852,5.5016,0\n"
        "1,2,181,95,75.808,227.01,1,-1,-1,-1\n"
        "2,1,90,99,61.08,218.56,1,4.5113,0.25,0\n"
        "2,3,5,5,10,20,0,3.0,2.0,0\n"  # flag 0: not evaluated
    )
    gt = load_mot_gt(path)
    assert list(gt) == [1, 2]
    boxes, ids, vis, classes = gt[1]
    np.testing.assert_allclose(boxes[0], [88, 99, 149.08, 317.56], rtol=1e-6)
    np.testing.assert_array_equal(ids, [1, 2])
    np.testing.assert_allclose(vis, [1.0, 1.0])  # not the world y (5.5016)
    np.testing.assert_array_equal(classes, [0, 0])  # pedestrians, not dropped as class 4
    np.testing.assert_array_equal(gt[2][1], [1])
    np.testing.assert_allclose(gt[2][2], [1.0])  # not 0.25
    assert len(load_mot_gt(path, eval_only=False)[2][0]) == 2


def test_occlusion_from_boxes_in_front():
    from ibntrack.eval.detsim import occlusion

    # b (bottom 110) stands in front of a (bottom 100) and covers its right half; c overlaps nobody.
    boxes = np.array([[0, 0, 10, 100], [5, 10, 15, 110], [50, 0, 60, 100]], float)
    covered, occluder = occlusion(boxes)
    np.testing.assert_allclose(covered, [0.45, 0.0, 0.0])  # 5 x 90 of 10 x 100
    np.testing.assert_array_equal(occluder, [1, -1, -1])


def test_hostile_embeddings_do_not_change_boxes():
    gt = _grid_gt(6, 12, 0.8, moving=True)
    clean = simulate_detections(gt, 5, DetSimConfig.hostile(16, emb_noise_visible=0.0))
    noisy = simulate_detections(
        gt, 5, DetSimConfig.hostile(16, emb_noise_visible=5.0, emb_noise_occluded=9.0)
    )
    for f in gt:
        np.testing.assert_array_equal(clean[f][0], noisy[f][0])
        np.testing.assert_array_equal(clean[f][1], noisy[f][1])
        assert not np.allclose(clean[f][2], noisy[f][2])


def test_identity_similarity_correlates_prototypes():
    gt = _grid_gt(1, 40, 1.0)
    cfg = DetSimConfig(
        emb_dim=256, fp_rate=0.0, miss_prob_visible=0.0, emb_noise_visible=0.0, identity_similarity=0.5
    )
    _, _, emb, _ = simulate_detections(gt, 2, cfg)[1]
    sims = emb @ emb.T
    off = sims[~np.eye(len(emb), dtype=bool)]
    assert off.mean() == pytest.approx(0.5, abs=0.05)  # cos = s for noise-free prototypes
    with pytest.raises(ValueError, match="identity_similarity"):
        DetSimConfig(identity_similarity=1.0)
