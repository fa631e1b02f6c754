"""A tiny deterministic data set for tests and smoke runs: one bright bar per image.

Class k is a bar at angle k * 18 degrees (coloured by class for RGB), slightly shifted and
rotated at random, on a noisy dark background. Drawn directly at the requested size, so a
64x64 RGB model gets sharp 64x64 bars rather than upsampled 28x28 ones.
"""

from __future__ import annotations

import colorsys

import numpy as np

NUM_CLASSES = 10
SIZES = {"train": 1024, "test": 256}
SEED = 20170801  # fixed: the data set is part of the tests, not of a run's randomness
HALF_WIDTH, HALF_LENGTH = 0.12, 0.7  # of the bar, in units of half the image side
NOISE = 0.04


def _palette() -> np.ndarray:
    """One saturated colour per class, evenly spaced in hue."""
    return np.array([colorsys.hsv_to_rgb(k / NUM_CLASSES, 0.8, 1.0)
                     for k in range(NUM_CLASSES)], dtype=np.float32)


def make_synthetic(split: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 for the split; the same every call."""
    channels, height, width = shape
    rng = np.random.default_rng([SEED, list(SIZES).index(split)])
    n = SIZES[split]
    labels = rng.permutation(np.arange(n) % NUM_CLASSES)

    angle = labels * (np.pi / NUM_CLASSES) + rng.normal(0.0, 0.03, n)
    centre = rng.uniform(-0.15, 0.15, (2, n)).astype(np.float32)
    ys = ((np.arange(height) + 0.5) / height * 2 - 1).astype(np.float32)
    xs = ((np.arange(width) + 0.5) / width * 2 - 1).astype(np.float32)
    dx = xs[None, None, :] - centre[0, :, None, None]  # (N, 1, W)
    dy = ys[None, :, None] - centre[1, :, None, None]  # (N, H, 1)
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    along, across = dx * cos + dy * sin, dy * cos - dx * sin  # (N, H, W)

    # A one-pixel soft edge keeps small images from aliasing into jagged stairs.
    edge = 2.0 / min(height, width)
    inside_w = np.clip((HALF_WIDTH - np.abs(across)) / edge + 0.5, 0, 1)
    inside_l = np.clip((HALF_LENGTH - np.abs(along)) / edge + 0.5, 0, 1)
    bar = (inside_w * inside_l)[:, None]  # (N, 1, H, W)

    colour = np.ones((n, 1), np.float32) if channels == 1 else _palette()[labels]
    noise = rng.standard_normal((n, channels, height, width), dtype=np.float32) * NOISE
    images = bar * colour[:, :, None, None] + noise
    images = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)
