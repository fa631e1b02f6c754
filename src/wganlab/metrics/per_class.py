"""Per-class quality of a class-conditional generator, from the evaluator's outputs.

    class_accuracy(predicted, asked, num_classes)   the share of images asked for as class k
                                                    that the evaluator calls k: per class,
                                                    overall, and the worst class
    per_class_fid(f_real, real_labels, f_fake, asked, num_classes)
                                                    FID of each class's samples against that
                                                    class's reference images, same features

Pure functions of arrays; evaluate.py feeds them when the samples carry the classes they
were drawn for.
"""

from __future__ import annotations

import numpy as np

from .frechet import fid_from_features

MIN_PER_CLASS = 2  # rows FID needs on each side to have a covariance at all


def _labels(values, name: str, n: int | None = None) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of class indices; got {array.dtype} "
                         f"{array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries for {n} images")
    return array


def class_accuracy(predicted, asked, num_classes: int) -> dict:
    """{"class_accuracy": the share of all images classified as the class asked for,
    "class_accuracy_min": the worst class's share, "class_accuracy_per_class": a list (None
    for a class no image was asked for)}."""
    asked = _labels(asked, "asked")
    predicted = _labels(predicted, "predicted", len(asked))
    if len(asked) == 0:
        raise ValueError("class_accuracy: no images")
    hit = predicted == asked
    per = [float(hit[asked == k].mean()) if (asked == k).any() else None
           for k in range(num_classes)]
    present = [p for p in per if p is not None]
    return {"class_accuracy": float(hit.mean()), "class_accuracy_min": min(present),
            "class_accuracy_per_class": per}


def per_class_fid(f_real, real_labels, f_fake, asked, num_classes: int) -> dict:
    """{"fid_per_class": FID of class k's samples against class k's reference features (None
    where either side has fewer than MIN_PER_CLASS rows), "fid_class_mean": their mean}."""
    f_real, f_fake = np.asarray(f_real), np.asarray(f_fake)
    real_labels = _labels(real_labels, "real_labels", len(f_real))
    asked = _labels(asked, "asked", len(f_fake))
    fids = []
    for k in range(num_classes):
        real_k, fake_k = f_real[real_labels == k], f_fake[asked == k]
        enough = min(len(real_k), len(fake_k)) >= MIN_PER_CLASS
        fids.append(fid_from_features(real_k, fake_k) if enough else None)
    measured = [f for f in fids if f is not None]
    return {"fid_per_class": fids,
            "fid_class_mean": float(np.mean(measured)) if measured else None}
