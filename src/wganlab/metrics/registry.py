"""All metrics by name, each a function of features that returns a dict, and `compute_all`,
which runs them and flattens the results into one record (a row of metrics.jsonl).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .coverage import class_coverage
from .frechet import fid_from_features
from .kid import kernel_inception_distance
from .manifold import density_coverage, precision_recall
from .validate import as_pair


def _fid(f_real, f_fake, seed: int) -> dict:
    return {"fid": fid_from_features(f_real, f_fake)}


def _kid(f_real, f_fake, seed: int) -> dict:
    kid = kernel_inception_distance(f_real, f_fake, seed=seed)
    return {"kid_mean": kid["mean"], "kid_std": kid["std"]}


def _precision_recall(f_real, f_fake, seed: int) -> dict:
    return precision_recall(f_real, f_fake, k=3)


def _density_coverage(f_real, f_fake, seed: int) -> dict:
    return density_coverage(f_real, f_fake, k=5)


# Feature metrics: name -> fn(f_real, f_fake, seed) -> dict of floats.
FEATURE_METRICS: dict[str, Callable[..., dict]] = {
    "fid": _fid,
    "kid": _kid,
    "precision_recall": _precision_recall,
    "density_coverage": _density_coverage,
}

# Every key `compute_all` returns, in order.
METRIC_KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
               "modes_covered", "class_kl_to_uniform", "mean_confidence")


def compute_all(f_real, f_fake, pred_fake=None, probs_fake=None, num_classes: int | None = None,
                seed: int = 0, metrics: tuple[str, ...] | None = None) -> dict:
    """Every metric for one feature comparison, as a flat dict of plain numbers.

    f_real, f_fake: (N, D) and (M, D) features from the same evaluator.
    pred_fake, probs_fake, num_classes: the evaluator's predicted classes (M,) and, optionally,
        probabilities (M, num_classes) for the fake samples; without them the class keys
        (modes_covered, class_kl_to_uniform, mean_confidence) are None.
        pred_fake may be omitted when probs_fake is given (the argmax is used).
    seed: seeds the random subsets of KID.
    metrics: names from FEATURE_METRICS to run (default: all); keys of skipped ones are None.
    """
    real, fake = as_pair(f_real, f_fake, min_rows=2)
    names = tuple(FEATURE_METRICS) if metrics is None else tuple(metrics)
    unknown = [n for n in names if n not in FEATURE_METRICS]
    if unknown:
        raise ValueError(f"compute_all: unknown metrics {unknown}; choose from "
                         f"{', '.join(FEATURE_METRICS)}")
    out: dict = dict.fromkeys(METRIC_KEYS)
    for name in names:
        out.update(FEATURE_METRICS[name](real, fake, seed))

    if pred_fake is None and probs_fake is not None:
        pred_fake = np.asarray(probs_fake).argmax(axis=1)
    if pred_fake is not None:
        if num_classes is None:
            raise ValueError("compute_all: num_classes is required with pred_fake or probs_fake")
        if len(pred_fake) != len(fake):
            raise ValueError(f"compute_all: pred_fake has {len(pred_fake)} labels for "
                             f"{len(fake)} fake feature rows")
        classes = class_coverage(pred_fake, num_classes, probs=probs_fake)
        out["modes_covered"] = classes["modes_covered"]
        out["class_kl_to_uniform"] = classes["class_kl_to_uniform"]
        out["mean_confidence"] = classes["mean_confidence"]
    return out
