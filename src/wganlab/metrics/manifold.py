"""k-nearest-neighbour manifold metrics on feature sets.

- Precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls
  around its points, each ball's radius the distance to the point's k-th nearest neighbour in
  its own set. Precision is the share of fake samples inside the real manifold; recall the
  share of real samples inside the fake manifold.
- Density and coverage (Naeem et al. 2020) use only the real balls: density counts how many
  real balls hold each fake sample (divided by k, so about 1 when the sets match); coverage is
  the share of real balls that hold at least one fake sample.

A point on a ball's boundary counts as inside (<=) in all four, so identical sets score 1 even
with duplicate points. Distances are computed in row blocks, never as one N x M matrix, so
10,000 x 10,000 sets need only tens of MB.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .validate import as_features, as_pair

# Entries of one block of the distance matrix (float64): 2**22 is 32 MB.
_BLOCK_ENTRIES = 2 ** 22


def _squared_distance_blocks(x: np.ndarray, y: np.ndarray
                             ) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows, D) with D[i, j] = |x[rows][i] - y[j]|^2, a block of rows at a time."""
    y_sq = np.einsum("ij,ij->i", y, y)
    step = max(1, _BLOCK_ENTRIES // max(1, len(y)))
    for start in range(0, len(x), step):
        rows = slice(start, min(start + step, len(x)))
        xb = x[rows]
        d = np.einsum("ij,ij->i", xb, xb)[:, None] + y_sq[None, :] - 2.0 * (xb @ y.T)
        # |a|^2 + |b|^2 - 2ab can dip just below zero by round-off.
        np.maximum(d, 0.0, out=d)
        yield rows, d


def _knn_squared_radii(f: np.ndarray, k: int, name: str) -> np.ndarray:
    if not 1 <= k < len(f):
        raise ValueError(f"k must be in [1, {len(f) - 1}] for {name} with {len(f)} rows; "
                         f"got k={k}")
    radii = np.empty(len(f))
    for rows, d in _squared_distance_blocks(f, f):
        # Each point's distance to itself is exactly zero; round-off must not make it a
        # neighbour further away than a true duplicate.
        idx = np.arange(rows.start, rows.stop)
        d[idx - rows.start, idx] = 0.0
        # Index 0 after partitioning is the point itself, so index k is its k-th neighbour.
        radii[rows] = np.partition(d, k, axis=1)[:, k]
    return radii


def knn_radii(features, k: int) -> np.ndarray:
    """Distance from each row of an (N, D) array to its k-th nearest other row; shape (N,)."""
    f = as_features(features, "features", min_rows=2)
    return np.sqrt(_knn_squared_radii(f, k, "features"))


def precision_recall(f_real, f_fake, k: int = 3) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN radii.

    Returns {"precision", "recall"}, each in [0, 1].
    """
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    real_r2 = _knn_squared_radii(real, k, "f_real")
    fake_r2 = _knn_squared_radii(fake, k, "f_fake")
    fake_in_real = np.zeros(len(fake), dtype=bool)
    real_in_fake = np.zeros(len(real), dtype=bool)
    for rows, d in _squared_distance_blocks(real, fake):
        fake_in_real |= (d <= real_r2[rows, None]).any(axis=0)
        real_in_fake[rows] = (d <= fake_r2[None, :]).any(axis=1)
    return {"precision": float(fake_in_real.mean()), "recall": float(real_in_fake.mean())}


def density_coverage(f_real, f_fake, k: int = 5) -> dict:
    """Density and coverage (Naeem et al. 2020) with k-NN radii of the real set.

    Returns {"density", "coverage"}: density >= 0 (about 1 for matching sets, higher when fake
    samples crowd dense real regions); coverage in [0, 1].
    """
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    real_r2 = _knn_squared_radii(real, k, "f_real")
    balls_holding = 0
    covered = np.zeros(len(real), dtype=bool)
    for rows, d in _squared_distance_blocks(real, fake):
        inside = d <= real_r2[rows, None]
        balls_holding += int(inside.sum())
        covered[rows] = inside.any(axis=1)
    return {"density": balls_holding / (k * len(fake)), "coverage": float(covered.mean())}
