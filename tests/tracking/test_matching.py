"""Cost matrices and linear assignment."""

import numpy as np
import pytest

from ibntrack.tracking.kalman import KalmanFilter
from ibntrack.tracking.matching import (
    embedding_distance,
    fuse_motion,
    fuse_score,
    iou_distance,
    linear_assignment,
)


def test_iou_distance():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10.0]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10.0]])
    d = iou_distance(a, b)
    np.testing.assert_allclose(d[0], [1 - 50 / 150, 1.0, 0.0])
    assert iou_distance(a, np.zeros((0, 4))).shape == (2, 0)


def test_embedding_distance():
    t = np.array([[1.0, 0.0], [0.0, 3.0]])
    d = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(embedding_distance(t, d), [[0, 1, 2], [1, 0, 1]], atol=1e-12)
    assert embedding_distance(np.zeros((0, 2)), d).shape == (0, 3)
    with pytest.raises(ValueError, match="share E"):
        embedding_distance(t, np.ones((1, 3)))


def test_fuse_motion_blends_and_gates():
    kf = KalmanFilter()
    mean, cov = kf.initiate(np.array([100.0, 50.0, 0.5, 80.0]))
    # S_xx = 80: an offset of sqrt(80) in cx gives squared Mahalanobis 1; 40 px gives 20 > 9.4877.
    dets = np.array([[100 + np.sqrt(80), 50, 0.5, 80], [140, 50, 0.5, 80]])
    cost = np.array([[0.2, 0.1]])
    fused = fuse_motion(kf, cost, mean[None], cov[None], dets, lambda_=0.98)
    assert fused[0, 0] == pytest.approx(0.98 * 0.2 + 0.02 * 1.0)
    assert np.isinf(fused[0, 1])
    ungated = fuse_motion(kf, cost, mean[None], cov[None], dets, lambda_=0.98, gate=False)
    assert ungated[0, 1] == pytest.approx(0.98 * 0.1 + 0.02 * 40**2 / 80)
    assert cost[0, 1] == 0.1  # input untouched


def test_fuse_score():
    np.testing.assert_allclose(fuse_score(np.array([[0.2, 0.0]]), np.array([0.5, 1.0])), [[0.6, 0.0]])


@pytest.mark.parametrize("backend", ["lap", "scipy"])
def test_linear_assignment_hand_matrix(backend):
    cost = np.array([[0.1, 0.4, 0.9], [0.3, 0.2, 0.9], [0.9, 0.9, 0.9]])
    matches, ua, ub = linear_assignment(cost, 0.5, backend=backend)
    np.testing.assert_array_equal(matches, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(ua, [2])
    np.testing.assert_array_equal(ub, [2])


@pytest.mark.parametrize("backend", ["lap", "scipy"])
def test_linear_assignment_prefers_fewer_better_matches(backend):
    # Unmatched rows and columns cost thresh/2 each: matching (0,0) alone costs 0.1 + 0.25 + 0.25 = 0.6,
    # the two cross pairs 0.4 + 0.4 = 0.8; inf forbids a pair.
    cost = np.array([[0.1, 0.4], [0.4, np.inf]])
    matches, ua, ub = linear_assignment(cost, 0.5, backend=backend)
    np.testing.assert_array_equal(matches, [[0, 0]])
    np.testing.assert_array_equal(ua, [1])
    np.testing.assert_array_equal(ub, [1])


def test_backends_agree_on_random_matrices():
    rng = np.random.default_rng(0)
    for n, m in [(5, 7), (8, 3), (6, 6)]:
        cost = rng.random((n, m))
        cost[rng.random((n, m)) < 0.2] = np.inf
        a = linear_assignment(cost, 0.6, backend="lap")
        b = linear_assignment(cost, 0.6, backend="scipy")
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_linear_assignment_empty_and_bad_args():
    matches, ua, ub = linear_assignment(np.zeros((0, 3)), 0.5)
    assert matches.shape == (0, 2) and ua.size == 0
    np.testing.assert_array_equal(ub, [0, 1, 2])
    with pytest.raises(ValueError, match="thresh"):
        linear_assignment(np.zeros((2, 2)), 0.0)
    with pytest.raises(ValueError, match="backend"):
        linear_assignment(np.zeros((2, 2)), 0.5, backend="hungarian")


def test_auto_backend_falls_back_to_scipy(monkeypatch):
    import ibntrack.tracking.matching as matching

    monkeypatch.setattr(matching, "_lap", None)
    matches, _, _ = matching.linear_assignment(np.array([[0.1, 0.4], [0.4, np.inf]]), 0.5)
    np.testing.assert_array_equal(matches, [[0, 0]])
    with pytest.raises(ValueError, match="lap"):
        matching.linear_assignment(np.zeros((1, 1)), 0.5, backend="lap")


def _extended_cost(cost, thresh, matches):
    """Cost of a matching in the extended problem: pairs + thresh/2 per unmatched row and column."""
    n, m = cost.shape
    return sum(cost[r, c] for r, c in matches) + thresh / 2 * (n + m - 2 * len(matches))


def _brute_force_optimum(cost, thresh):
    """Minimum extended cost over every partial matching using only pairs costing <= thresh."""
    import itertools

    n, m = cost.shape
    best = _extended_cost(cost, thresh, [])
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                pairs = list(zip(rows, cols, strict=True))
                if all(cost[r, c] <= thresh for r, c in pairs):
                    best = min(best, _extended_cost(cost, thresh, pairs))
    return best


@pytest.mark.parametrize("backend", ["lap", "scipy"])
def test_linear_assignment_is_optimal_with_lone_pairs_and_conflicts(backend):
    # Rows 0/3 and columns 0/3 are lone pairs (matched without the solver); rows 1, 2 compete for
    # columns 1, 2; row 4 and column 4 have no feasible pair.
    cost = np.array(
        [
            [0.1, 0.9, 0.9, 0.9, np.inf],
            [0.9, 0.2, 0.3, 0.9, 0.9],
            [0.9, 0.1, 0.9, 0.9, 0.9],
            [0.9, 0.9, 0.9, 0.45, 0.9],
            [0.9, 0.9, 0.9, 0.9, 0.9],
        ]
    )
    matches, ua, ub = linear_assignment(cost, 0.5, backend=backend)
    np.testing.assert_array_equal(matches, [[0, 0], [1, 2], [2, 1], [3, 3]])
    np.testing.assert_array_equal(ua, [4])
    np.testing.assert_array_equal(ub, [4])
    rng = np.random.default_rng(1)
    for _ in range(40):
        n, m = rng.integers(1, 5, size=2)
        cost = rng.random((n, m))
        cost[rng.random((n, m)) < 0.3] = np.inf
        matches, ua, ub = linear_assignment(cost, 0.5, backend=backend)
        assert len(matches) + len(ua) == n and len(matches) + len(ub) == m
        assert _extended_cost(cost, 0.5, matches.tolist()) == pytest.approx(_brute_force_optimum(cost, 0.5))


def test_small_problems_solved_like_lap():
    """The SciPy fast path for N + M <= 32 finds matchings of the same total cost as LAPJV."""
    pytest.importorskip("lap")
    rng = np.random.default_rng(4)
    for _ in range(200):
        n, m = rng.integers(1, 12, 2)
        cost = rng.random((n, m))
        cost[rng.random((n, m)) < 0.3] = np.inf
        fast, _, _ = linear_assignment(cost, 0.7)
        ref, _, _ = linear_assignment(cost, 0.7, backend="lap")
        totals = [cost[mt[:, 0], mt[:, 1]].sum() + 0.35 * (n + m - 2 * len(mt)) for mt in (fast, ref)]
        assert totals[0] == pytest.approx(totals[1])
        assert (cost[fast[:, 0], fast[:, 1]] <= 0.7).all()
