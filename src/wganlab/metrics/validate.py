"""Input checks shared by the metric functions: every bad array is named in the error."""

from __future__ import annotations

import numpy as np


def as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
    """`x` as a finite float64 (N, D) array with N >= min_rows; ValueError naming `name`."""
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D); got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def as_pair(f_real, f_fake, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Real and fake feature arrays, checked to share their feature dimension."""
    real = as_features(f_real, "f_real", min_rows)
    fake = as_features(f_fake, "f_fake", min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"f_real and f_fake must have the same feature dimension; got "
                         f"{real.shape[1]} and {fake.shape[1]}")
    return real, fake
