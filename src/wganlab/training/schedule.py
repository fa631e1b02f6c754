"""How long a run is and in which order it sees the data: functions of the config and seed."""

from __future__ import annotations

import torch

from ..config import Config


def steps_per_epoch(n_images: int, cfg: Config) -> int:
    """Generator steps per pass over the data; each step draws n_critic real batches."""
    batches = n_images // cfg.train.batch_size
    return max(1, batches // (1 if cfg.train.shared_step else cfg.train.n_critic))


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
