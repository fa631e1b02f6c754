"""Metric math against answers known in closed form; tiny arrays, no networks."""

import math

import numpy as np
import pytest

from wganlab.metrics import (
    class_coverage,
    compute_all,
    density_coverage,
    feature_stats,
    fid_bootstrap,
    fid_from_features,
    frechet_distance,
    kernel_inception_distance,
    knn_radii,
    precision_recall,
)


def gaussian(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


# Fréchet distance.

def test_identical_stats_give_zero():
    f = gaussian(500, 8)
    mu, sigma = feature_stats(f)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-8)


def test_equal_covariances_give_squared_mean_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mu1,s1,mu2,s2", [(0.0, 1.0, 3.0, 2.0), (-1.5, 0.3, 2.0, 4.0)])
def test_one_dimensional_closed_form(mu1, s1, mu2, s2):
    expected = (mu1 - mu2) ** 2 + (s1 - s2) ** 2
    got = frechet_distance([mu1], [[s1 ** 2]], [mu2], [[s2 ** 2]])
    assert got == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1 ** 2, mu2, s2 ** 2) == pytest.approx(expected, rel=1e-9)


def test_diagonal_covariances_closed_form():
    # Commuting covariances: tr sqrt(S1 S2) = sum sqrt(s1_i s2_i).
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = frechet_distance(np.zeros(3), np.diag(s1), np.zeros(3), np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_near_singular_covariances_stay_finite():
    # 5 samples in 20 dimensions: rank-4 covariances.
    a, b = gaussian(5, 20, seed=2), gaussian(5, 20, shift=0.5, seed=3)
    value = fid_from_features(a, b)
    assert math.isfinite(value) and value > 0
    zero = np.zeros((4, 4))
    assert frechet_distance(np.zeros(4), zero, np.ones(4), zero) == pytest.approx(4.0)


def test_non_finite_square_root_is_retried_with_eps(monkeypatch):
    from wganlab.metrics import frechet

    real_sqrtm, calls = frechet.linalg.sqrtm, []

    def failing_once(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(frechet.linalg, "sqrtm", failing_once)
    value = frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), eps=0.5)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], 2.25 * np.eye(2))  # (1 + eps)^2 on the diagonal
    assert value == pytest.approx(2.0 + 4.0 - 2 * 3.0)  # |mu|^2 + tr(I + I) - 2 tr(1.5 I)


def test_frechet_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="mu1 and mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros((2, 2)), np.eye(2))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))
    with pytest.raises(ValueError, match="f_fake"):
        fid_from_features(gaussian(10, 3), gaussian(10, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        feature_stats(np.zeros((1, 3)))


def test_invalid_covariance_raises_on_imaginary_part():
    # A negative-definite "covariance" has no real square root of the product.
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.diag([1.0, 4.0]))


@pytest.mark.parametrize("d", [4, 32])
def test_fid_bootstrap_brackets_the_estimate(d):
    # In 32 dimensions the raw bootstrap values all lie above the full-sample FID.
    real, fake = gaussian(200, d), gaussian(200, d, shift=0.5, seed=1)
    low, high = fid_bootstrap(real, fake, n_boot=20, seed=0)
    assert low < fid_from_features(real, fake) < high
    assert (low, high) == fid_bootstrap(real, fake, n_boot=20, seed=0)
    with pytest.raises(ValueError, match="n_boot"):
        fid_bootstrap(real, fake, n_boot=1)


# Kernel Inception Distance.

def test_kid_near_zero_for_same_distribution_and_positive_when_shifted():
    real = gaussian(400, 16, seed=0)
    same = kernel_inception_distance(real, gaussian(400, 16, seed=1), n_subsets=20,
                                     subset_size=200)
    shifted = kernel_inception_distance(real, gaussian(400, 16, shift=1.0, seed=1),
                                        n_subsets=20, subset_size=200)
    assert abs(same["mean"]) < 3 * same["std"] + 0.01
    assert shifted["mean"] > 0.5
    assert shifted["mean"] > 10 * abs(same["mean"])


def test_kid_unbiased_estimator_matches_direct_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) + 1
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(5)) / 25
    kid = kernel_inception_distance(x, y, n_subsets=3, subset_size=50)
    assert kid["mean"] == pytest.approx(xx + yy - 2 * xy, rel=1e-9)  # subset capped at 5
    assert kid["std"] == pytest.approx(0.0, abs=1e-9)


def test_kid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_subsets"):
        kernel_inception_distance(gaussian(10, 2), gaussian(10, 2), n_subsets=0)
    with pytest.raises(ValueError, match="f_real"):
        kernel_inception_distance(np.zeros(10), gaussian(10, 2))


# Precision, recall, density, coverage.

def test_identical_sets_are_perfect():
    f = gaussian(300, 5)
    assert precision_recall(f, f, k=3) == {"precision": 1.0, "recall": 1.0}
    dc = density_coverage(f, f, k=5)
    assert dc["coverage"] == 1.0
    assert dc["density"] >= 1.0  # each point sits in its own ball plus its neighbours'


def test_duplicates_still_count_as_inside():
    f = np.repeat(gaussian(20, 3), 5, axis=0)  # every point five times: radii of zero
    assert precision_recall(f, f, k=3) == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(f, f, k=4)["coverage"] == 1.0


def test_separated_clouds_score_zero():
    real, fake = gaussian(200, 4), gaussian(200, 4, shift=100.0, seed=1)
    assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, fake) == {"density": 0.0, "coverage": 0.0}


def test_collapsed_generator_has_precision_but_no_recall():
    real = gaussian(400, 2)
    fake = np.zeros((400, 2)) + np.random.default_rng(1).normal(scale=0.01, size=(400, 2))
    pr = precision_recall(real, fake)
    assert pr["precision"] == 1.0 and pr["recall"] < 0.1
    assert density_coverage(real, fake)["coverage"] < 0.1


def test_knn_radii_on_a_line():
    f = np.array([[0.0], [1.0], [3.0], [6.0]])
    np.testing.assert_allclose(knn_radii(f, 1), [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(knn_radii(f, 2), [3.0, 2.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="k must be in"):
        knn_radii(f, 4)


def test_blocked_distances_match_dense(monkeypatch):
    from wganlab.metrics import manifold

    real, fake = gaussian(150, 3), gaussian(120, 3, shift=0.3, seed=4)
    expected = (precision_recall(real, fake), density_coverage(real, fake))
    monkeypatch.setattr(manifold, "_BLOCK_ENTRIES", 1000)  # many small blocks
    assert (precision_recall(real, fake), density_coverage(real, fake)) == expected


# Class coverage.

def test_single_class_generator():
    out = class_coverage(np.full(1000, 3), num_classes=10)
    assert out["modes_covered"] == 1
    assert out["class_kl_to_uniform"] == pytest.approx(math.log(10))
    assert out["mean_confidence"] is None


def test_uniform_generator_covers_every_class():
    labels = np.arange(1000) % 10
    probs = np.full((1000, 10), 0.02)
    probs[np.arange(1000), labels] = 0.82
    out = class_coverage(labels, 10, probs=probs)
    assert out["modes_covered"] == 10
    assert out["class_kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert out["mean_confidence"] == pytest.approx(0.82)


def test_min_share_threshold():
    labels = np.array([0] * 90 + [1] * 6 + [2] * 4)  # default min_share = 0.05
    assert class_coverage(labels, 10)["modes_covered"] == 2
    assert class_coverage(labels, 10, min_share=0.01)["modes_covered"] == 3


def test_class_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="pred_labels must lie"):
        class_coverage(np.array([0, 10]), 10)
    with pytest.raises(ValueError, match="integers"):
        class_coverage(np.array([0.5, 1.0]), 10)
    with pytest.raises(ValueError, match="probs"):
        class_coverage(np.array([0, 1]), 10, probs=np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="num_classes"):
        class_coverage(np.array([0, 1]), 0)


# compute_all.

def test_compute_all_returns_every_metric():
    real, fake = gaussian(200, 6), gaussian(200, 6, shift=0.2, seed=1)
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=200)
    out = compute_all(real, fake, probs.argmax(1), probs, num_classes=10, seed=0)
    assert set(out) == {"fid", "kid_mean", "kid_std", "precision", "recall", "density",
                        "coverage", "modes_covered", "class_kl_to_uniform", "mean_confidence"}
    assert out["fid"] == pytest.approx(fid_from_features(real, fake))
    assert out["precision"] == precision_recall(real, fake, k=3)["precision"]
    assert out["mean_confidence"] == pytest.approx(probs.max(1).mean())
    assert compute_all(real, fake, probs_fake=probs, num_classes=10) == out
    assert all(isinstance(v, (int, float)) for v in out.values())


def test_compute_all_without_classes_and_with_a_subset():
    real, fake = gaussian(50, 3), gaussian(50, 3, seed=1)
    out = compute_all(real, fake, metrics=("fid",))
    assert out["fid"] > 0 and out["kid_mean"] is None and out["modes_covered"] is None
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_all(real, fake, metrics=("inception_score",))
    with pytest.raises(ValueError, match="num_classes"):
        compute_all(real, fake, pred_fake=np.zeros(50, dtype=int))
