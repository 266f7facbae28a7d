"""Kalman filter: hand-computed initiate / predict / update / gating numbers."""

import numpy as np
import pytest
from scipy.stats import chi2

from ibntrack.tracking.kalman import CHI2INV95, KalmanFilter, xyah_to_xyxy, xyxy_to_xyah

Z0 = np.array(
    [100.0, 50.0, 0.5, 80.0]
)  # cx, cy, a, h; std_weight_position·h = 4, std_weight_velocity·h = 0.5


def test_chi2_table_is_the_095_quantile():
    for k, value in CHI2INV95.items():
        assert value == pytest.approx(chi2.ppf(0.95, k), abs=1e-4)


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 50.0, 100.0]])
    xyah = xyxy_to_xyah(boxes)
    np.testing.assert_allclose(xyah, [[30.0, 60.0, 0.5, 80.0]])
    np.testing.assert_allclose(xyah_to_xyxy(xyah), boxes)


def test_initiate():
    mean, cov = KalmanFilter().initiate(Z0)
    np.testing.assert_allclose(mean, [100, 50, 0.5, 80, 0, 0, 0, 0])
    # position std 2·4 = 8 -> 64; velocity std 10·0.5 = 5 -> 25; aspect 1e-2, 1e-5.
    np.testing.assert_allclose(np.diag(cov), [64, 64, 1e-4, 64, 25, 25, 1e-10, 25])
    assert np.count_nonzero(cov - np.diag(np.diag(cov))) == 0


def test_predict_covariance_and_constant_velocity_mean():
    kf = KalmanFilter()
    mean, cov = kf.initiate(Z0)
    _, pcov = kf.predict(mean, cov)
    # P_xx = 64 + 25 + q(4²) = 105; P_xv = 25; P_vv = 25 + 0.5² = 25.25
    assert pcov[0, 0] == pytest.approx(105.0)
    assert pcov[0, 4] == pytest.approx(25.0)
    assert pcov[4, 4] == pytest.approx(25.25)
    moving = np.array([100, 50, 0.5, 80, 3, -2, 0, 1.0])
    pmean, _ = kf.predict(moving, cov)
    np.testing.assert_allclose(pmean, [103, 48, 0.5, 81, 3, -2, 0, 1])


def test_update_hand_computed_gain():
    kf = KalmanFilter()
    mean, cov = kf.predict(*kf.initiate(Z0))
    new_mean, new_cov = kf.update(mean, cov, np.array([111.0, 50.0, 0.5, 80.0]))
    # S_xx = 105 + R(4²) = 121; K_x = 105/121, K_vx = 25/121; innovation 11.
    assert new_mean[0] == pytest.approx(100 + 11 * 105 / 121)
    assert new_mean[4] == pytest.approx(11 * 25 / 121)
    np.testing.assert_allclose(new_mean[[1, 2, 3]], [50, 0.5, 80])
    assert new_cov[0, 0] == pytest.approx(105 - 105**2 / 121)


def test_learns_velocity_and_predicts_next_step():
    kf = KalmanFilter()
    mean, cov = kf.initiate(Z0)
    for t in range(1, 60):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, Z0 + np.array([4.0 * t, -1.0 * t, 0.0, 0.0]))
    assert mean[4] == pytest.approx(4.0, abs=0.05)
    assert mean[5] == pytest.approx(-1.0, abs=0.05)
    pred, _ = kf.predict(mean, cov)
    np.testing.assert_allclose(pred[:4], Z0 + [4.0 * 60, -60.0, 0, 0], atol=0.1)


def test_multi_predict_and_update_match_single_track():
    kf = KalmanFilter()
    rng = np.random.default_rng(0)
    states = [kf.initiate(Z0 + rng.normal(size=4) * [10, 10, 0.01, 5]) for _ in range(3)]
    means = np.stack([m for m, _ in states])
    covs = np.stack([c for _, c in states])
    pm, pc = kf.multi_predict(means, covs)
    z = means[:, :4] + 3.0
    um, uc = kf.multi_update(pm, pc, z)
    for i, (m, c) in enumerate(states):
        m1, c1 = kf.predict(m, c)
        np.testing.assert_allclose(pm[i], m1)
        np.testing.assert_allclose(pc[i], c1)
        m2, c2 = kf.update(m1, c1, z[i])
        np.testing.assert_allclose(um[i], m2)
        np.testing.assert_allclose(uc[i], c2)


def test_gating_distance():
    kf = KalmanFilter()
    mean, cov = kf.initiate(Z0)
    # Innovation covariance is diagonal, S_xx = S_hh = 64 + 16 = 80.
    offsets = np.array([[0, 0, 0, 0], [np.sqrt(80), 0, 0, 0], [0, 0, 0, 2 * np.sqrt(80)]])
    d = kf.gating_distance(mean, cov, Z0 + offsets)
    np.testing.assert_allclose(d, [0, 1, 4], atol=1e-9)
    d_pos = kf.gating_distance(mean, cov, Z0 + offsets, only_position=True)
    np.testing.assert_allclose(d_pos, [0, 1, 0], atol=1e-9)
    assert kf.multi_gating_distance(mean[None], cov[None], np.zeros((0, 4))).shape == (1, 0)


def test_bad_constants():
    with pytest.raises(ValueError, match="std_weight_position"):
        KalmanFilter(std_weight_position=0)


def test_multi_initiate_matches_initiate():
    kf = KalmanFilter()
    z = np.array([Z0, Z0 + [50, 20, 0.1, 30]])
    means, covs = kf.multi_initiate(z)
    for i in range(2):
        m, c = kf.initiate(z[i])
        np.testing.assert_array_equal(means[i], m)
        np.testing.assert_array_equal(covs[i], c)


def test_gating_distance_with_correlated_covariance():
    # A full (non-diagonal) covariance: d² must equal (z − Hx)ᵀ S⁻¹ (z − Hx) computed directly.
    kf = KalmanFilter()
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 8, 8))
    covs = a @ a.transpose(0, 2, 1) + np.eye(8)
    means = np.concatenate(
        [rng.normal(size=(3, 4)) * [100, 100, 0.1, 20] + [500, 300, 0.5, 100], np.zeros((3, 4))], 1
    )
    z = means[:, :4] + rng.normal(size=(3, 4)) * [5, 5, 0.05, 3]
    _, s = kf.multi_project(means, covs)
    d = z[None, :, :] - means[:, None, :4]  # [N, M, 4]
    expected = np.einsum("nmi,nij,nmj->nm", d, np.linalg.inv(s), d)
    np.testing.assert_allclose(kf.multi_gating_distance(means, covs, z), expected, rtol=1e-9)
    d2 = d[..., :2]
    expected_pos = np.einsum("nmi,nij,nmj->nm", d2, np.linalg.inv(s[:, :2, :2]), d2)
    np.testing.assert_allclose(
        kf.multi_gating_distance(means, covs, z, only_position=True), expected_pos, rtol=1e-9
    )


def test_update_with_correlated_covariance_uses_the_full_solve():
    # Off-diagonal innovation covariances (not produced by this filter's diagonal noise, but allowed)
    # take the general path; the diagonal ones the elementwise one. Both equal the textbook update.
    kf = KalmanFilter()
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 8, 8))
    correlated = a @ a.transpose(0, 2, 1) + np.eye(8)
    _, diagonal = kf.multi_initiate(np.array([Z0, Z0 + 10.0]))
    means = np.concatenate([np.array([Z0, Z0 + 10.0]), rng.normal(size=(2, 4))], axis=1)
    z = means[:, :4] + rng.normal(size=(2, 4))
    for covs in (correlated, diagonal):
        new_means, new_covs = kf.multi_update(means, covs, z)
        _, s = kf.multi_project(means, covs)
        gain = covs[:, :, :4] @ np.linalg.inv(s)  # [N, 8, 4] P Hᵀ S⁻¹
        np.testing.assert_allclose(
            new_means, means + np.einsum("nij,nj->ni", gain, z - means[:, :4]), rtol=1e-10
        )
        np.testing.assert_allclose(new_covs, covs - gain @ s @ gain.transpose(0, 2, 1), rtol=1e-9, atol=1e-9)
