"""The functions a notebook reaches for, each a thin call into the library (load_generator
and sample are generate.py's own).

Heavy parts (the training loop, the metrics and their evaluator networks) are imported when
first used, so `import wganlab` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import Config, apply_overrides
from .data import Dataset, load_dataset
from .errors import ConfigError
from .generate import load_generator, sample

if TYPE_CHECKING:
    from .training.loop import TrainResult

__all__ = ["evaluate_images", "evaluate_run", "export", "load_dataset", "load_generator",
           "sample", "train"]


def evaluate_images(images, dataset: str = "fashion-mnist", split: str = "test",
                    seed: int = 0, bootstrap: int = 0, device: str | torch.device = "cpu",
                    data_dir: str | None = None) -> dict:
    """FID, KID, precision/recall, density/coverage and class coverage of images against
    `dataset`'s `split`, with each number's provenance (n, evaluator, its SHA-256, seed).

    images: uint8 (N, C, H, W) or floats in [-1, 1], a tensor or a NumPy array, at the
    evaluator's shape (1x28x28 for mnist, fashion-mnist, synthetic).
    """
    from .data.user import as_uint8
    from .metrics.evaluate import evaluate_images as _evaluate

    return _evaluate(as_uint8(images), dataset, split, data_dir, seed, bootstrap, device)


def evaluate_run(run: str | Path, n: int = 10_000, seed: int = 0, bootstrap: int = 0,
                 checkpoint: str | Path | None = None,
                 device: str | torch.device = "cpu", member: int | None = None) -> dict:
    """Sample a run's generator, evaluate the samples, write RUN/eval.json and return it.
    Of an ensemble run: member `member`, or every member and their mean +- std (None)."""
    from .generate import ensemble_size
    from .metrics.evaluate import evaluate_run as _evaluate_run

    first = 0 if member is None and ensemble_size(run, checkpoint) > 1 else member
    cfg = load_generator(run, checkpoint=checkpoint, member=first).config
    if cfg.run.dataset == "user":
        raise ConfigError(f"{run}: trained on images given from Python, so there is no "
                          "reference set; use evaluate_images(sample(...), dataset=...)")
    return _evaluate_run(run, checkpoint, n, seed, bootstrap, device, member=member)


def train(cfg: Config, data=None, resume: bool | str = False) -> TrainResult:
    """Train a run from a Config (see get_preset); returns its run directory and last step.

    data: None for cfg.run.dataset, or your own images: a uint8 / float tensor or NumPy array
    (N, C, H, W) (floats in [-1, 1]), a pair (images, labels) with class indices (N,), a
    Dataset from load_dataset, or a torch.utils.data.Dataset of images or (image, label)
    pairs. They get the named data sets' checks, are resized to cfg.model.image_shape when
    that is set, and the run records its data set as "user". A conditional run
    (cfg.model.conditional) needs labels; cfg.model.class_names names them.
    """
    from .data.user import NAME, from_images
    from .training.loop import train as _train

    if data is None:
        if cfg.run.dataset == NAME:
            raise ConfigError("dataset 'user' is images given from Python: pass them again, "
                              "train(cfg, data=images)")
        return _train(cfg, resume)

    labels, names = None, cfg.model.class_names
    if isinstance(data, Dataset):  # one from load_dataset: its labels and names come along
        data, labels, names = data.images, data.labels, names or data.class_names
    elif isinstance(data, tuple) and len(data) == 2:
        data, labels = data
    images = from_images(data, cfg.model.image_shape, labels, names)
    return _train(apply_overrides(cfg, {"run": {"dataset": NAME}}), resume, data=images)


def export(source: str | Path, out: str | Path, member: int | None = None) -> Path:
    """Export a generator: a folder (weights, config.json, model card) or, for a path ending
    in .safetensors, that one file. load_generator reads either back. member: which model
    of an ensemble run."""
    if Path(out).suffix == ".safetensors":
        from .generate import export as _export_file

        return _export_file(source, out, member=member)
    from .hub import export_folder

    return export_folder(source, out, member=member)

