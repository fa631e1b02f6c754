"""The pieces that make the networks class-conditional, and the classes a run knows by name.

    ConditionalBatchNorm   BatchNorm whose scale and shift are the class's (SNGAN, BigGAN)
    ProjectionHead         the critic's <embed(y), h> term (Miyato & Koyama 2018)
    n_classes(cfg)         how many classes a model config's networks take (0: unconditional)
    class_index(names, k)  a class given as an index or a name, checked
    class_mix(a, b, t)     soft labels between two classes, for walks from one to the other
    class_names(generator) the classes a (loaded) generator draws, by name
    asked_classes(generator, labels, n)  the class of each of n images to draw, checked

Labels are class indices (N,) int64, or soft labels (N, K) floats whose rows weight the
classes (a walk from class a to class b passes through (1 - t) e_a + t e_b): every conditional
layer takes either.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

if TYPE_CHECKING:  # annotations only
    from .config import ModelConfig


def n_classes(cfg: ModelConfig) -> int:
    """The classes a model config's networks are built for: 0 when unconditional."""
    if cfg.conditional == "none":
        return 0
    if not cfg.class_names:
        raise ConfigError(f"--conditional {cfg.conditional}: the number of classes comes from "
                          "the data's labels, and this config names none (--class-names)")
    return len(cfg.class_names)


def embed(labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rows of `table` (K, D) for class indices (N,), or their mixtures for soft labels
    (N, K): (N, D)."""
    if labels.is_floating_point():
        return labels.to(table.dtype) @ table
    return F.embedding(labels, table)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; the scale and shift are looked up per class instead
    (initialised to 1 and 0, so a fresh network starts as the unconditional one).

    dims=1 normalises (N, C) features, dims=2 (N, C, H, W) maps.
    """

    def __init__(self, channels: int, classes: int, momentum: float, eps: float,
                 dims: int = 2):
        super().__init__()
        kind = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.norm = kind(channels, momentum=momentum, eps=eps, affine=False)
        self.scale = nn.Parameter(torch.ones(classes, channels))
        self.shift = nn.Parameter(torch.zeros(classes, channels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """x normalised, then scaled and shifted by each sample's class."""
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return (self.norm(x) * embed(labels, self.scale).view(shape)
                + embed(labels, self.shift).view(shape))


def conditioned(layers: nn.Sequential, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """x through `layers`, each ConditionalBatchNorm given the labels too."""
    for layer in layers:
        x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm) else layer(x)
    return x


class ProjectionHead(nn.Module):
    """The projection discriminator's class term <e_y, h>: one embedding e_y per class, of
    the size of the critic's last features h (N, D)."""

    def __init__(self, classes: int, features: int):
        super().__init__()
        self.embedding = nn.Embedding(classes, features)
        # Scaled so that <e_y, h> starts about as large as the critic's linear head psi(h).
        nn.init.normal_(self.embedding.weight, 0.0, features ** -0.5)

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """<e_y, h> per sample: (N,)."""
        return (embed(labels, self.embedding.weight) * h).sum(dim=1)


def class_index(names: tuple[str, ...] | None, wanted, flag: str = "--class") -> int:
    """The index of a class given as an index (int or digits) or as a name (any case);
    ConfigError naming `flag` for one the run does not have."""
    if not names:
        raise ConfigError(f"{flag}: this generator is unconditional (trained without "
                          "--conditional), so it takes no class")
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names[:12]))
    listing += ", ..." if len(names) > 12 else ""
    text = str(wanted).strip()
    if isinstance(wanted, int) or text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(names):
            raise ConfigError(f"{flag}: class {index} is out of range; this generator has "
                              f"{len(names)} classes (0-{len(names) - 1}: {listing})")
        return index
    folded = [n.casefold() for n in names]
    if text.casefold() not in folded:
        raise ConfigError(f"{flag}: no class named {text!r}; this generator's classes are "
                          f"{listing}")
    return folded.index(text.casefold())


def class_mix(a: int, b: int, t: torch.Tensor, classes: int) -> torch.Tensor:
    """Soft labels (len(t), classes) from class a (t = 0) to class b (t = 1)."""
    eye = torch.eye(classes, device=t.device)
    return (1 - t)[:, None] * eye[a] + t[:, None] * eye[b]


def class_names(generator: nn.Module) -> tuple[str, ...]:
    """The classes a generator draws, by name ("0", "1", ... when its config names none);
    () for an unconditional generator."""
    k = getattr(generator, "n_classes", 0)
    cfg = getattr(generator, "config", None)
    names = cfg.model.class_names if cfg is not None else None
    return tuple(names) if names and len(names) == k else tuple(str(i) for i in range(k))


def asked_classes(generator: nn.Module, labels, n: int, device) -> torch.Tensor | None:
    """The class of each of n images as (n,) int64 on `device`: from one class (an index or a
    name) for all, or one per image (indices or names). None for an unconditional generator;
    a conditional one given none gets every class in turn (0, 1, ..., K-1, 0, ...). Labels
    that do not fit the generator are a ConfigError naming `labels`."""
    names = class_names(generator)
    if labels is None:
        return None if not names else torch.arange(n, device=device) % len(names)
    if not names:
        raise ConfigError("labels: this generator is unconditional (trained without "
                          "--conditional); sample it without labels")
    if isinstance(labels, (int, str)):
        return torch.full((n,), class_index(names, labels, "labels"), device=device)
    if isinstance(labels, torch.Tensor) and (labels.is_floating_point() or labels.dim() != 1):
        raise ConfigError(f"labels: give class indices, one per image (n,), int; got a "
                          f"{labels.dtype} tensor of shape {tuple(labels.shape)}")
    if not isinstance(labels, torch.Tensor):
        try:
            labels = [class_index(names, k, "labels") if isinstance(k, str) else
                      operator.index(k) for k in labels]
        except TypeError:
            raise ConfigError("labels: give class indices or names, one per image, or one "
                              "class for all") from None
        labels = torch.tensor(labels, dtype=torch.long).view(-1)
    if len(labels) != n:
        raise ConfigError(f"labels: {len(labels)} labels for {n} images; give one per image, "
                          "or one class for all")
    bad = labels[(labels < 0) | (labels >= len(names))]
    if len(bad):
        class_index(names, int(bad[0]), "labels")  # raises, listing the classes
    return labels.to(device=device, dtype=torch.long)
