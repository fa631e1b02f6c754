"""How long a run is and in which order it sees the data: functions of the config and seed."""

from __future__ import annotations

import torch

from ..config import Config
from ..ensemble import member_seeds
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
    """Generator steps: --steps, else --epochs, else None with --minutes, else 100 epochs."""
    t = cfg.train
    if t.steps is not None:
        return t.steps
    if t.epochs is not None:
        return t.epochs * per_epoch
    return None if t.minutes is not None else 100 * per_epoch  # the tutorial's 100 epochs


def epoch_order(n: int, seed: int, epoch: int, device, buffer: int | None = None
                ) -> torch.Tensor:
    """The data order of an epoch depends only on (seed, epoch), so a resume needs no state.

    buffer None: a uniform permutation. buffer B: tf.data's Dataset.shuffle(B) (see
    buffer_shuffle); B >= n is again a uniform permutation.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if buffer is None or buffer >= n:
        return torch.randperm(n, generator=g).to(device)
    return buffer_shuffle(n, buffer, g).to(device)


def member_orders(n: int, cfg, epoch: int, device, block: int | None = None) -> torch.Tensor:
    """The epoch's data order (n,), or an ensemble's (N, n): member k's is that of a single
    run seeded with member k's seed; with `block` (each member's own subset of n images,
    one after another), member k's order is shifted to its rows k * block onwards."""
    t = cfg.train
    if t.ensemble == 1:
        return epoch_order(n, t.seed, epoch, device, t.shuffle_buffer)
    orders = torch.stack([epoch_order(n, seed, epoch, device, t.shuffle_buffer)
                          for seed in member_seeds(t.seed, t.ensemble, t.seeds)])
    if block is not None:
        orders += torch.arange(t.ensemble, device=orders.device).view(-1, 1) * block
    return orders


def buffer_shuffle(n: int, buffer: int, generator: torch.Generator) -> torch.Tensor:
    """The order in which Dataset.shuffle(buffer) emits items 0..n-1 read in file order.

    A buffer holds the next `buffer` unread items; each output is a uniformly chosen buffer
    slot, refilled with the next unread item until the file ends, after which the buffer
    drains. So item i cannot come out before position i - buffer + 1, and the items a
    dropped remainder loses come mostly from the end of the file (the tutorial's
    drop_remainder=True loses 96 of 60,000 images). The random stream is PyTorch's, not
    TensorFlow's: the kind of order is the same, the order itself is not.
    """
    uniforms = torch.rand(n, generator=generator, dtype=torch.float64).tolist()
    slots = list(range(min(buffer, n)))
    unread = len(slots)
    order = []
    for u in uniforms:
        j = int(u * len(slots))
        order.append(slots[j])
        if unread < n:  # refill the slot with the next item of the file
            slots[j] = unread
            unread += 1
        else:  # drain: move the last slot into the hole
            slots[j] = slots[-1]
            slots.pop()
    return torch.tensor(order, dtype=torch.long)
