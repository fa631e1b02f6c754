"""Sample-quality metrics, layered from pure math up to images.

Pure functions of feature arrays (NumPy, float64; no networks):

    frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float
    feature_stats(features) -> (mu, sigma)
    fid_from_features(f_real, f_fake) -> float
    fid_bootstrap(f_real, f_fake, n_boot=100, seed=0, level=0.95) -> (low, high)
    kernel_inception_distance(f_real, f_fake, n_subsets=100, subset_size=1000, seed=0)
        -> {"mean", "std"}
    precision_recall(f_real, f_fake, k=3) -> {"precision", "recall"}
    density_coverage(f_real, f_fake, k=5) -> {"density", "coverage"}
    knn_radii(features, k) -> (N,) distances to each row's k-th nearest neighbour
    class_coverage(pred_labels, num_classes, min_share=None, probs=None)
        -> {"modes_covered", "class_kl_to_uniform", "mean_confidence", "class_histogram", ...}
    compute_all(f_real, f_fake, pred_fake=None, probs_fake=None, num_classes=None, seed=0)
        -> {"fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
            "modes_covered", "class_kl_to_uniform", "mean_confidence"}

Evaluator networks (features for the functions above):

    get_evaluator(dataset, device="cpu", data_dir=None, train=True) -> evaluator
        mnist / fashion-mnist / synthetic: the CNN Evaluator (shipped weights, else cached,
        else trained once and cached); other data sets: Inception-v3 (the `fid` extra).
    extract_features(evaluator, images_uint8, batch_size=500, device=None)
        -> (features float64 (N, D), probs float64 (N, K) or None)
    train_evaluator(dataset, out_path, epochs=None, seed=0, device="cpu", data_dir=None)
        -> sidecar dict (test_accuracy, sha256, command, ...)
    load_evaluator(path, device="cpu"), save_evaluator(model, path, info)

Typical use:

    ev = get_evaluator("fashion-mnist")
    f_real, _ = extract_features(ev, real_uint8)
    f_fake, p_fake = extract_features(ev, fake_uint8)
    record = compute_all(f_real, f_fake, probs_fake=p_fake, num_classes=10, seed=0)
"""

from .coverage import class_coverage
from .evaluator import Evaluator, extract_features, load_evaluator, save_evaluator
from .evaluator_lookup import get_evaluator
from .evaluator_training import train_evaluator
from .frechet import feature_stats, fid_bootstrap, fid_from_features, frechet_distance
from .inception import InceptionUnavailable
from .kid import kernel_inception_distance
from .manifold import density_coverage, knn_radii, precision_recall
from .registry import FEATURE_METRICS, METRIC_KEYS, compute_all

__all__ = [
    "FEATURE_METRICS", "METRIC_KEYS", "Evaluator", "InceptionUnavailable", "class_coverage",
    "compute_all", "density_coverage", "extract_features", "feature_stats", "fid_bootstrap",
    "fid_from_features", "frechet_distance", "get_evaluator", "kernel_inception_distance",
    "knn_radii", "load_evaluator", "precision_recall", "save_evaluator", "train_evaluator",
]
