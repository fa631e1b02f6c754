"""The optimizers of a run, as its config names them."""

from __future__ import annotations

import torch

from ..config import Config


def make_optimizer(cfg: Config, params, lr: float) -> torch.optim.Optimizer:
    if cfg.train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.train.betas))
