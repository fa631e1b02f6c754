"""--max-images: a deterministic, class-balanced subset of a data set, and the rest held out."""

from __future__ import annotations

import dataclasses

import torch

from .tensors import Dataset

HELDOUT_MAX = 10_000  # held-out images kept (the overfitting heuristic scores 64 at a time)


def balanced_indices(labels: torch.Tensor | None, n: int, count: int, seed: int
                     ) -> torch.Tensor:
    """n indices out of `count` images, drawn by `seed`, as equal per class as the classes
    allow (without labels: uniformly); the same (labels, n, seed) always gives the same ones,
    in ascending order."""
    g = torch.Generator().manual_seed(seed * 1_000_033 + 17)
    if labels is None:
        return torch.randperm(count, generator=g)[:n].sort().values
    classes = labels.unique().tolist()
    pools = [torch.nonzero(labels == c).flatten() for c in classes]
    pools = [pool[torch.randperm(len(pool), generator=g)] for pool in pools]
    # Deal the images class by class in a seeded order, one round at a time, so each class
    # gets n // K and the first n % K classes of the order one more (fewer if it runs out):
    # the image at depth d of the class in place o of the order is dealt as card d * K + o.
    order = torch.randperm(len(pools), generator=g)
    cards = torch.cat([torch.arange(len(pool)) * len(pools) + order[k]
                       for k, pool in enumerate(pools)])
    dealt = torch.cat(pools)[cards.argsort()[:n]]
    return dealt.sort().values


def take_subset(data: Dataset, n: int, seed: int) -> tuple[Dataset, Dataset]:
    """(the subset of n images, the other images of the split with their labels: held out, at
    most HELDOUT_MAX of them, in a seeded order). ValueError when n exceeds the data set."""
    if not 1 <= n <= len(data):
        raise ValueError(f"{n} is more than the data set holds ({len(data)} images)"
                         if n > len(data) else f"must be at least 1; got {n}")
    keep = balanced_indices(data.labels, n, len(data), seed)
    rest = torch.ones(len(data), dtype=torch.bool)
    rest[keep] = False
    others = torch.nonzero(rest).flatten()
    g = torch.Generator().manual_seed(seed * 1_000_033 + 18)
    others = others[torch.randperm(len(others), generator=g)][:HELDOUT_MAX]
    return _rows(data, keep), _rows(data, others)


def _rows(data: Dataset, rows: torch.Tensor) -> Dataset:
    """The images (and labels) of `data` at `rows`, in that order."""
    labels = data.labels[rows] if data.labels is not None else None
    return dataclasses.replace(data, images=data.images[rows], labels=labels)


def concat_datasets(parts: list[Dataset]) -> Dataset:
    """Datasets of one source as one: their images (and labels) one after another."""
    labels = None if parts[0].labels is None else torch.cat([d.labels for d in parts])
    return dataclasses.replace(parts[0], images=torch.cat([d.images for d in parts]),
                               labels=labels)
