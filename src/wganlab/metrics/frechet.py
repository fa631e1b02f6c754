"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features
come from an image classifier), and a bootstrap interval for it.

Layered as in pytorch-fid: `frechet_distance` is pure math on (mu, sigma); `feature_stats`
turns features into (mu, sigma); `fid_from_features` and `fid_bootstrap` combine the two.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from .validate import as_features, as_pair


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of an (N, D) feature array, in float64."""
    f = as_features(features, "features", min_rows=2)
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _as_gaussian(mu, sigma, which: str) -> tuple[np.ndarray, np.ndarray]:
    # Scalars are accepted so that 1-D Gaussians read naturally: frechet_distance(0, 1, 2, 4).
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a vector (D,); got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"sigma{which} must be a square (D, D) matrix matching mu{which} "
                         f"(D={mu.shape[0]}); got shape {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which} and sigma{which} must be finite (found NaN or Inf)")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

    If the matrix square root is not finite (near-singular covariances), `eps` is added to
    both diagonals and the root is taken again. A negligible imaginary part left by round-off
    is dropped; a large one raises ValueError.
    """
    mu1, sigma1 = _as_gaussian(mu1, sigma1, "1")
    mu2, sigma2 = _as_gaussian(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same dimension; got {mu1.shape[0]} "
                         f"and {mu2.shape[0]}")

    with warnings.catch_warnings():
        # Singular products are expected (fewer samples than dimensions, dead features);
        # the result is checked below instead of warning about it.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Only the trace enters the distance, so only the diagonal's imaginary part matters.
        # The tolerance scales with the covariances so that large features are judged alike.
        imag = np.abs(np.diagonal(covmean).imag).max()
        scale = max(1.0, float(np.trace(sigma1) + np.trace(sigma2)))
        if imag > 1e-3 * scale:
            raise ValueError(f"frechet_distance: sqrt(sigma1 @ sigma2) has an imaginary "
                             f"component of {imag:.3g}; the covariances are not valid "
                             "(not positive semi-definite?)")
        covmean = covmean.real

    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    # The true value is >= 0; round-off can leave a tiny negative number for equal inputs.
    return max(value, 0.0)


def fid_from_features(f_real, f_fake, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature arrays."""
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    return frechet_distance(*feature_stats(real), *feature_stats(fake), eps=eps)


def fid_bootstrap(f_real, f_fake, n_boot: int = 100, seed: int = 0,
                  level: float = 0.95) -> tuple[float, float]:
    """A bootstrap interval (default 95%) for the FID of two feature sets: how far the value
    would move under resampling, for telling two runs' FIDs apart.

    Both sets are resampled with replacement, independently, `n_boot` times. Resampling
    duplicates points, which inflates FID (like a smaller N does); in 128 dimensions the
    whole bootstrap distribution can lie above the full-sample value. So the distribution is
    shifted to have the full-sample FID as its mean before its percentiles are taken. FID's
    own upward bias at finite N remains: compare runs at the same N.
    """
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    if n_boot < 2:
        raise ValueError(f"fid_bootstrap: n_boot must be >= 2; got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"fid_bootstrap: level must be in (0, 1); got {level}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        r = real[rng.integers(0, len(real), len(real))]
        f = fake[rng.integers(0, len(fake), len(fake))]
        values[i] = frechet_distance(*feature_stats(r), *feature_stats(f))
    values += frechet_distance(*feature_stats(real), *feature_stats(fake)) - values.mean()
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return max(float(low), 0.0), float(high)
