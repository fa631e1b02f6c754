"""Mode coverage judged by a classifier: which classes a generator's samples fall into.

A generator that has collapsed onto a few modes shows it here even when its samples are sharp:
few classes covered and a class histogram far from uniform.
"""

from __future__ import annotations

import numpy as np


def class_coverage(pred_labels, num_classes: int, min_share: float | None = None,
                   probs=None) -> dict:
    """Summarise the classifier's predicted classes for N generated samples.

    pred_labels: (N,) integer class indices in [0, num_classes).
    min_share: the share of samples a class needs to count as covered. The default,
        1 / (2 * num_classes), is half of a uniform generator's share: a class the generator
        makes at half the rate or more counts, while the scattered misclassifications that
        a collapsed generator leaves in other classes (typically a percent or two) do not.
    probs: optional (N, num_classes) class probabilities, for the mean confidence.

    Returns {"modes_covered": int, "num_classes": int, "min_share": float,
    "class_histogram": the share of samples in each class, "class_kl_to_uniform": KL(histogram ||
    uniform) in nats (0 for uniform, log(num_classes) for a single class),
    "mean_confidence": mean max-probability, or None without probs}.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    if hasattr(pred_labels, "detach"):
        pred_labels = pred_labels.detach().cpu().numpy()
    labels = np.asarray(pred_labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"pred_labels must be a non-empty 1-D array; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"pred_labels must hold integers; got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"pred_labels must lie in [0, {num_classes}); got values from "
                         f"{labels.min()} to {labels.max()}")
    if min_share is None:
        min_share = 1.0 / (2 * num_classes)
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1]; got {min_share}")

    share = np.bincount(labels, minlength=num_classes) / len(labels)
    nonzero = share[share > 0]  # 0 * log 0 = 0
    kl = float(np.sum(nonzero * np.log(nonzero * num_classes)))
    return {
        "modes_covered": int((share >= min_share).sum()),
        "num_classes": int(num_classes),
        "min_share": float(min_share),
        "class_histogram": [float(s) for s in share],
        "class_kl_to_uniform": max(kl, 0.0),
        "mean_confidence": _mean_confidence(probs, len(labels), num_classes),
    }


def _mean_confidence(probs, n: int, num_classes: int) -> float | None:
    if probs is None:
        return None
    if hasattr(probs, "detach"):
        probs = probs.detach().cpu().numpy()
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n, num_classes):
        raise ValueError(f"probs must have shape (N, num_classes) = ({n}, {num_classes}); "
                         f"got {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("probs must be finite probabilities in [0, 1]")
    return float(p.max(axis=1).mean())
