"""Kernel Inception Distance (Bińkowski et al. 2018): an unbiased estimate of the squared
maximum mean discrepancy between two feature sets under a cubic polynomial kernel.

Unlike FID it has an unbiased estimator, so small sample sizes do not inflate it; it is
averaged over random subsets to bound the cost (quadratic in the subset size).
"""

from __future__ import annotations

import numpy as np

from .validate import as_pair


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for all row pairs; (N, D) x (M, D) -> (N, M)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples (m >= 2 rows each) with `polynomial_kernel`."""
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    # The unbiased estimator leaves out the diagonal k(x_i, x_i) terms of the within-set sums.
    within = ((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(f_real, f_fake, n_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> dict:
    """KID between two (N, D) feature sets: {"mean", "std"} of the unbiased MMD^2 over
    `n_subsets` random subsets of `subset_size` rows drawn without replacement from each set.

    `subset_size` is capped at the smaller set's size. The mean can be slightly negative when
    the two sets come from the same distribution; that is the estimator being unbiased.
    The kernel is cubic in the features, so KID scales with their magnitude: compare values
    only between runs measured with the same evaluator.
    """
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    if n_subsets < 1:
        raise ValueError(f"kernel_inception_distance: n_subsets must be >= 1; got {n_subsets}")
    if subset_size < 2:
        raise ValueError(f"kernel_inception_distance: subset_size must be >= 2; "
                         f"got {subset_size}")
    m = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for i in range(n_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        values[i] = mmd2_unbiased(x, y)
    return {"mean": float(values.mean()), "std": float(values.std())}
