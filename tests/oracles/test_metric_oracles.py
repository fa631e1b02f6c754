"""The metric math against independent computations on the same features.

- FID against a brute-force value with covariances that do NOT commute: tr((S1 S2)^(1/2)) is
  computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)), a symmetric matrix's root by its
  eigendecomposition. (With commuting covariances, tr(S1^(1/2) S2^(1/2)) gives the same
  number, so a classic wrong formula would pass.)
- FID and KID against torchmetrics' functional math; precision, recall, density and
  coverage against the `prdc` package (Naeem et al.'s own code). Both are optional test
  dependencies (the `test` extra); the tests are skipped without them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wganlab.metrics import (
    density_coverage,
    feature_stats,
    fid_from_features,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)
from wganlab.metrics.kid import mmd2_unbiased


def spd(rng, d):
    m = rng.normal(size=(d, d))
    return m @ m.T / d + 0.1 * np.eye(d)


def sym_sqrt(s):
    values, vectors = np.linalg.eigh(s)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def brute_force_fid(mu1, s1, mu2, s2):
    root1 = sym_sqrt(s1)
    cross = sym_sqrt(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross))


@pytest.mark.parametrize("d", [2, 5, 16])
def test_frechet_distance_with_non_commuting_covariances(d):
    rng = np.random.default_rng(d)
    s1, s2 = spd(rng, d), spd(rng, d)
    assert np.abs(s1 @ s2 - s2 @ s1).max() > 0.1  # they really do not commute
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = brute_force_fid(mu1, s1, mu2, s2)
    wrong = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2)
                  - 2 * np.trace(sym_sqrt(s1) @ sym_sqrt(s2)))
    assert abs(wrong - expected) > 1e-3 * expected  # the test can tell the two apart
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_distance_of_a_worked_2d_example():
    # S1 = diag(4, 1), S2 = [[2, 1], [1, 2]]: S1^(1/2) S2 S1^(1/2) = [[8, 2], [2, 2]], whose
    # eigenvalues are 5 +- sqrt(13); the trace of its root is
    # sqrt(5 + sqrt(13)) + sqrt(5 - sqrt(13)) = sqrt(10 + 2 sqrt(12)).
    s1, s2 = np.diag([4.0, 1.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
    expected = 1.0 + 5.0 + 4.0 - 2 * np.sqrt(10 + 2 * np.sqrt(12))
    assert frechet_distance([1.0, 0.0], s1, [0.0, 0.0], s2) == pytest.approx(expected, rel=1e-12)


def features(seed, n=160, d=6, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))  # correlated features: covariances that do not commute
    return rng.normal(size=(n, d)) @ mix * scale + shift


def test_feature_stats_are_the_sample_mean_and_unbiased_covariance():
    f = features(0)
    mu, sigma = feature_stats(f)
    centred = f - f.sum(0) / len(f)
    np.testing.assert_allclose(mu, f.sum(0) / len(f), rtol=1e-12)
    np.testing.assert_allclose(sigma, centred.T @ centred / (len(f) - 1), rtol=1e-10)


def test_fid_from_features_against_torchmetrics():
    tm_fid = pytest.importorskip("torchmetrics.image.fid")
    real, fake = features(1), features(2, shift=0.5, scale=1.3)

    def stats(f):
        t = torch.tensor(f, dtype=torch.float64)
        return t.mean(0), torch.cov(t.T)

    expected = tm_fid._compute_fid(*stats(real), *stats(fake)).item()
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-8)
    assert fid_from_features(real, fake) == pytest.approx(
        brute_force_fid(*feature_stats(real), *feature_stats(fake)), rel=1e-8)


def test_kid_against_torchmetrics():
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    real, fake = features(3, n=120), features(4, n=120, shift=0.3)
    expected = tm_kid.poly_mmd(torch.tensor(real), torch.tensor(fake)).item()
    assert mmd2_unbiased(real, fake) == pytest.approx(expected, rel=1e-10)
    # One subset of every row is a permutation of the sets: the same unbiased MMD^2.
    kid = kernel_inception_distance(real, fake, n_subsets=1, subset_size=120)
    assert kid["mean"] == pytest.approx(expected, rel=1e-10) and kid["std"] == 0.0
    # Subsets: the mean of the subsets' own MMD^2 values, as torchmetrics' KID computes it.
    kid = kernel_inception_distance(real, fake, n_subsets=4, subset_size=50, seed=7)
    rng = np.random.default_rng(7)
    values = []
    for _ in range(4):
        x = real[rng.choice(120, 50, replace=False)]
        y = fake[rng.choice(120, 50, replace=False)]
        values.append(tm_kid.poly_mmd(torch.tensor(x), torch.tensor(y)).item())
    assert kid["mean"] == pytest.approx(np.mean(values), rel=1e-10)
    assert kid["std"] == pytest.approx(np.std(values), rel=1e-8)


@pytest.mark.parametrize("seed,shift,scale", [(5, 0.0, 1.0), (6, 0.7, 1.5), (7, 0.3, 0.6)])
def test_precision_recall_density_coverage_against_prdc(seed, shift, scale, capsys):
    prdc = pytest.importorskip("prdc")
    real = features(seed, n=150)
    fake = features(seed + 100, n=130, shift=shift, scale=scale)
    ref3 = prdc.compute_prdc(real, fake, nearest_k=3)
    ref5 = prdc.compute_prdc(real, fake, nearest_k=5)
    capsys.readouterr()  # prdc prints the set sizes
    ours = {**precision_recall(real, fake, k=3), **density_coverage(real, fake, k=5)}
    expected = {"precision": ref3["precision"], "recall": ref3["recall"],
                "density": ref5["density"], "coverage": ref5["coverage"]}
    for key, value in expected.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-12), key
    assert 0 < ours["precision"] < 1 or 0 < ours["recall"] < 1  # not a degenerate case
