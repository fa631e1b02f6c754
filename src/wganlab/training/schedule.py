"""How long a run is and in which order it sees the data: functions of the config and seed."""

from __future__ import annotations

import torch

from ..config import Config
from ..errors import ConfigError


def steps_per_epoch(n_images: int, cfg: Config) -> int:
    """Generator steps per pass over the data; each step draws n_critic real batches."""
    check_data_fits(n_images, cfg)
    batches = n_images // cfg.train.batch_size
    return batches // (1 if cfg.train.shared_step else cfg.train.n_critic)


def check_data_fits(n_images: int, cfg: Config) -> None:
    """One generator step draws n_critic whole batches (one for the tutorial's shared step)
    from one epoch's order: the data set must hold them, or a step would gather an empty or
    short batch."""
    t = cfg.train
    per_step = 1 if t.shared_step else t.n_critic
    if t.batch_size * per_step > n_images:
        drawn = f" x n_critic {per_step} = {t.batch_size * per_step} images" if per_step > 1 \
            else ""
        raise ConfigError(f"--batch-size: {t.batch_size}{drawn} per generator step is more "
                          f"than the data set holds ({n_images} images); lower --batch-size"
                          + (" or --n-critic" if per_step > 1 else ""))


def planned_steps(cfg: Config, per_epoch: int) -> int | None:
    t = cfg.train
    if t.steps is not None:
        return t.steps
    if t.epochs is not None:
        return t.epochs * per_epoch
    return None if t.minutes is not None else 100 * per_epoch  # the tutorial's 100 epochs


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The data order of an epoch depends only on (seed, epoch), so a resume needs no state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)
