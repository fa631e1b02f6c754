"""The functions a notebook reaches for, each a thin call into the library.

Heavy parts (the training loop, the metrics and their evaluator networks) are imported when
first used, so `import wganlab` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import Config
from .data import Dataset, load_dataset
from .errors import ConfigError
from .models import Generator

if TYPE_CHECKING:
    from .training.loop import TrainResult

__all__ = ["evaluate_images", "evaluate_run", "export", "load_dataset", "load_generator",
           "sample", "train"]


def load_generator(source: str | Path, device: str | torch.device = "cpu",
                   weights: str = "ema") -> Generator:
    """A trained generator in eval mode, from any of the places wganlab keeps one.

    source: a run directory (its newest valid checkpoint), a checkpoint file (.pt), an export
    folder or .safetensors file from `wganlab export`, or "hf://USER/REPO" (the hub extra).
    The generator carries `.config` (the run's Config) and `.provenance` (checkpoint, step,
    weights). weights: "ema" (the averaged generator where the run keeps one) or "raw".
    """
    from .generate import load_generator as _load

    generator, cfg, info = _load(source, device=device, weights=weights)
    generator.config, generator.provenance = cfg, info
    return generator


def sample(generator: Generator, n: int, seed: int = 0, z_dist: str | None = None,
           device: str | torch.device | None = None) -> torch.Tensor:
    """n images as uint8 (n, C, H, W) on the CPU; the same seed gives the same images.

    z_dist ("normal" or "uniform") defaults to the one the generator was trained with, as
    recorded by load_generator. Floats in [-1, 1]: images.float() / 127.5 - 1.
    """
    from .base.images import to_uint8
    from .generate import sample as _sample

    cfg = getattr(generator, "config", None)
    z_dist = z_dist or (cfg.train.z_dist if cfg is not None else None)
    if z_dist is None:
        raise ValueError("sample: this generator has no training config; pass z_dist "
                         "('normal' or 'uniform', as it was trained)")
    device = device or next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return to_uint8(_sample(generator, n, z_dist, seed, device))
    finally:
        generator.train(was_training)


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
                 device: str | torch.device = "cpu") -> dict:
    """Sample a run's generator, evaluate the samples, write RUN/eval.json and return it."""
    from .generate import load_generator as _load
    from .metrics.evaluate import evaluate_run as _evaluate_run

    _, cfg, _ = _load(run, checkpoint)
    if cfg.run.dataset == "user":
        raise ConfigError(f"{run}: trained on images given from Python, so there is no "
                          "reference set; use evaluate_images(sample(...), dataset=...)")
    return _evaluate_run(run, checkpoint, n, seed, bootstrap, device)


def train(cfg: Config, data=None, resume: bool | str = False) -> TrainResult:
    """Train a run from a Config (see get_preset); returns its run directory and last step.

    data: None for cfg.run.dataset, or your own images: a uint8 / float tensor or NumPy array
    (N, C, H, W) (floats in [-1, 1]), or a torch.utils.data.Dataset of such images. They get
    the named data sets' checks, are resized to cfg.model.image_shape when that is set, and
    the run records its data set as "user".
    """
    from .data.user import NAME, from_images
    from .training.loop import train as _train

    if data is None:
        if cfg.run.dataset == NAME:
            raise ConfigError("dataset 'user' is images given from Python: pass them again, "
                              "train(cfg, data=images)")
        return _train(cfg, resume)

    pixels = data.images if isinstance(data, Dataset) else data  # one from load_dataset
    images = from_images(pixels, cfg.model.image_shape)
    cfg.run.dataset = NAME
    return _train(cfg, resume, data=images)


def export(source: str | Path, out: str | Path) -> Path:
    """Export a generator: a folder (weights, config.json, model card) or, for a path ending
    in .safetensors, that one file. load_generator reads either back."""
    if Path(out).suffix == ".safetensors":
        from .generate import export as _export_file

        return _export_file(source, out)
    from .hub import export_folder

    return export_folder(source, out)

