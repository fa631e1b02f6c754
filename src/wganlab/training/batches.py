"""The batch of one generator step: its real images from the epoch order, and its z and
penalty weights from the run's noise stream, drawn in one place for every runner.

The noise stream is consumed in the order z_1, alpha_1, ..., z_k, alpha_k, z_G (alpha only
for penalties that interpolate), always for the *global* batch: under DDP each rank keeps
its slice, so every rank's stream stays the one-process run's and a checkpoint resumes at any
world size (on CPU the draws are the one-process run's exactly; on CUDA Philox offsets make
them different but identically distributed). With --xflip a flip draw per real image follows;
without it nothing more is drawn. (--augment draws from a stream of its own, augmenting.py,
so it moves none of these.) An ensemble (--ensemble N) has one stream per member, each
consumed in that order (flips too), so member k draws what its single run draws, and each
draw is the members' draws concatenated, member-major.

Labels (conditional runs only) come from the data, gathered with the images' own indices
from a label tensor that lives beside the images (on the device when they are), so a CUDA
graph gathers them too and nothing is read back. Each critic update's row is its real
batch's labels (its fakes are drawn for the same classes: steps.py says why); the generator
update's row repeats the last real batch's. They draw nothing from the noise stream, so a
conditional run's z and alphas are the unconditional run's, and an unconditional run's batch
is exactly what it was before labels existed.
"""

from __future__ import annotations

import torch

from .. import losses
from ..augment import xflip
from ..config import Config
from ..data import sample_z, to_float
from .augmenting import AugmentState, make_augmenter
from .distributed import Shard
from .kernels import layout
from .steps import Batch


def check_batches(order: torch.Tensor, first: int, count: int, batch_size: int) -> None:
    """Refuse batches that reach past the epoch order (a short slice would gather nothing, or
    the wrong count, instead of failing)."""
    if first < 0 or (first + count) * batch_size > len(order):
        last = first + count - 1
        which = f"batch {first}" if count == 1 else f"batches {first}-{last}"
        raise IndexError(f"{which} of {batch_size} images need images up to "
                         f"{(last + 1) * batch_size} of the epoch order, but the data set "
                         f"holds {len(order)}")


class BatchMaker:
    """Makes each step's Batch: `indices(order, first)` on the host side (outside any CUDA
    graph), then `make(indices)` as device work only (inside one)."""

    def __init__(self, cfg: Config, images: torch.Tensor,
                 noise: torch.Generator | list[torch.Generator], device: torch.device,
                 shard: Shard = Shard(), augment_state: AugmentState | None = None,
                 labels: torch.Tensor | None = None):
        t = cfg.train
        self.images, self.device, self.shard = images, device, shard
        self.noises = list(noise) if isinstance(noise, (list, tuple)) else [noise]
        # The data's labels (N,) int64 beside the images; only a conditional model reads them.
        self.labels = labels if cfg.model.conditional != "none" else None
        if cfg.model.conditional != "none" and labels is None:
            raise ValueError("a conditional model needs the data's labels")
        self.z_dim, self.z_dist, self.batch_size = cfg.model.z_dim, t.z_dist, t.batch_size
        self.shared = t.shared_step  # one z for both updates: no separate generator z
        self.updates = 1 if t.shared_step else t.n_critic  # real batches per step
        self.interpolates = losses.PENALTIES[t.penalty][1]
        self.channels_last, self.xflip = cfg.speed.channels_last, t.xflip
        # What the step passes every critic input through (None without --augment).
        self.augmenter = make_augmenter(cfg, augment_state, device, shard)

    def indices(self, order: torch.Tensor, first: int) -> torch.Tensor:
        """This process's image indices for the step from batch `first` of `order`:
        (updates * local batch,), this rank's slice of each batch. An ensemble's order is
        (N, n), one per member: (updates * N * batch,), each update's batches member-major."""
        b, k = self.batch_size, self.updates
        check_batches(order[0] if order.dim() == 2 else order, first, k, b)
        if order.dim() == 2:
            return order[:, first * b:(first + k) * b].unflatten(1, (k, b)).transpose(0, 1
                                                                                 ).reshape(-1)
        step = order[first * b:(first + k) * b].view(k, b)
        local = self.shard.local(b)
        return step[:, self.shard.rank * local:(self.shard.rank + 1) * local].reshape(-1)

    def make(self, indices: torch.Tensor) -> Batch:
        """The real images at `indices` and the step's draws from the noise stream."""
        images = torch.index_select(self.images, 0, indices.to(self.images.device))
        reals = layout(to_float(images.to(self.device, non_blocking=True)),
                       self.channels_last)
        reals = reals.unflatten(0, (self.updates, -1))
        z, alphas = [], []
        for _ in range(self.updates):
            z.append(self._z())
            if self.interpolates:
                alphas.append(self._draw(lambda g: self.shard.take(torch.rand(
                    self.batch_size, generator=g, device=g.device).to(self.device))))
        if not self.shared:
            z.append(self._z())
        if self.xflip:  # (b, updates) per member: this rank's images of each batch
            u = self._draw(lambda g: self.shard.take(torch.rand(
                self.updates, self.batch_size, generator=g, device=g.device).T)).T
            reals = xflip(reals.flatten(0, 1), u.to(self.device).flatten()
                          ).unflatten(0, reals.shape[:2])
        return Batch(reals, torch.stack(z), torch.stack(alphas) if alphas else None,
                     self._labels(indices))

    def _labels(self, indices: torch.Tensor) -> torch.Tensor | None:
        """(k + 1, b) labels: each real batch's, then the last one's again for the generator
        (k = 1 for the shared step, whose one z feeds both updates)."""
        if self.labels is None:
            return None
        rows = torch.index_select(self.labels, 0, indices.to(self.labels.device))
        rows = rows.to(self.device, non_blocking=True).view(self.updates, -1)
        return rows if self.shared else torch.cat([rows, rows[-1:]])

    def _z(self) -> torch.Tensor:
        return self._draw(lambda g: self.shard.take(
            sample_z(self.batch_size, self.z_dim, self.z_dist, g, self.device)))

    def _draw(self, draw) -> torch.Tensor:
        """draw(stream) from the one noise stream, or each member's, concatenated."""
        if len(self.noises) == 1:
            return draw(self.noises[0])
        return torch.cat([draw(g) for g in self.noises])
