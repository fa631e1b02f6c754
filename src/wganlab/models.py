"""The tutorial's DCGAN generator and convolutional critic, generalised.

Defaults reproduce the tutorial (Keras) networks' layers: 804,832 trainable parameters in the
generator and 1,039,489 in the critic for 1x28x28 images. With keras_padding the stride-2
layers also pad as Keras does (the `seed` preset; tests/test_keras_oracle.py checks it).
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .conditioning import ConditionalBatchNorm, ProjectionHead, conditioned, n_classes
from .errors import ConfigError

if TYPE_CHECKING:  # annotations only: the networks do not depend on the config module
    from .config import ModelConfig


def _critic_norm(kind: str, channels: int, momentum: float, eps: float) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum, eps=eps)
    if kind == "layer":  # over (C, H, W) with a per-channel affine, as in Gulrajani et al.
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"critic norm must be batch, layer, instance or none; got {kind!r}")


def keras_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Pixels Keras's padding="same" adds before and after one axis: the output has
    ceil(size / stride) pixels, and an odd total puts the extra pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasSameConv2d(nn.Conv2d):
    """Conv2d padded as Keras pads "same": for a 5x5 stride-2 kernel on 28x28 that is 1 pixel
    before and 2 after, which nn.Conv2d's symmetric `padding` cannot express."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int):
        super().__init__(in_channels, out_channels, kernel, stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of x padded as Keras's "same" pads it."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = keras_same_padding(x.shape[-2], kh, sh)
        left, right = keras_same_padding(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class KerasSameConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d cropped as Keras crops "same": the full output ((n - 1) s + k pixels)
    cut to n s starting at the "before" padding of the matching convolution (1 for 5x5,
    stride 2), where padding=2, output_padding=1 would start at 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int):
        super().__init__(in_channels, out_channels, kernel, stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The full transposed convolution of x, cropped as Keras's "same" crops it."""
        full = super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = x.shape[-2] * sh, x.shape[-1] * sw
        top = keras_same_padding(h, kh, sh)[0]
        left = keras_same_padding(w, kw, sw)[0]
        return full[..., top:top + h, left:left + w]


def check_image_size(image_shape: tuple[int, int, int], n_blocks: int,
                     flag: str = "n-blocks") -> int:
    """How much the stride-2 blocks scale an image (2**n_blocks); ConfigError naming `flag`
    when H or W does not divide by it."""
    _, height, width = image_shape
    factor = 2 ** n_blocks
    if height % factor or width % factor:
        raise ConfigError(f"--{flag}: {n_blocks} blocks need H and W divisible by {factor}; "
                          f"the images are {height}x{width} (lower --n-blocks or set "
                          "--image-shape)")
    return factor


@contextlib.contextmanager
def eval_mode(module: nn.Module, enabled: bool = True):
    """Inference mode inside (BatchNorm's running statistics, no dropout), the module's own
    mode put back after."""
    was_training = module.training
    if enabled:
        module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class Dropout(nn.Dropout):
    """nn.Dropout, or, while `mask` holds a tensor, x * mask: an ensemble (ensemble.py) hands
    each member the masks drawn from that member's own generator."""

    def __init__(self, p: float):
        super().__init__(p)
        self.register_buffer("mask", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout of x (the given mask's, in training mode, when one is set)."""
        if self.mask is not None and self.training:
            return x * self.mask
        return super().forward(x)


class Generator(nn.Module):
    """z -> dense -> reshape -> transposed convolutions -> tanh image in [-1, 1].

    With n_classes > 0 it is class-conditional: every BatchNorm takes its scale and shift
    from the class (conditioning.ConditionalBatchNorm), and forward needs labels.
    """

    def __init__(self, *, z_dim: int = 20, image_shape: tuple[int, int, int] = (1, 28, 28),
                 n_filters: int = 128, n_blocks: int = 2, slope: float = 0.3,
                 bn_momentum: float = 0.01, bn_eps: float = 1e-3, keras_padding: bool = False,
                 n_classes: int = 0):
        super().__init__()
        channels, height, width = image_shape
        factor = check_image_size(image_shape, n_blocks)
        self.z_dim, self.image_shape, self.n_classes = z_dim, tuple(image_shape), n_classes
        self.hidden = (n_filters, height // factor, width // factor)
        hidden_units = n_filters * self.hidden[1] * self.hidden[2]

        def bn(c, dims=2):
            if n_classes:
                return ConditionalBatchNorm(c, n_classes, bn_momentum, bn_eps, dims)
            kind = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
            return kind(c, momentum=bn_momentum, eps=bn_eps)

        # Keras normalises each of the dense layer's units, before the reshape.
        self.project = nn.Sequential(
            nn.Linear(z_dim, hidden_units, bias=False),
            bn(hidden_units, dims=1),
            nn.LeakyReLU(slope),
        )  # state size: n_filters x H/2^n x W/2^n after the reshape
        layers = [nn.ConvTranspose2d(n_filters, n_filters, 5, 1, 2, bias=False),
                  bn(n_filters), nn.LeakyReLU(slope)]
        nf = n_filters
        for _ in range(n_blocks):
            # kernel 5, stride 2, "same": output_padding=1 doubles the size exactly
            up = KerasSameConvTranspose2d(nf, nf // 2, 5, 2) if keras_padding else \
                nn.ConvTranspose2d(nf, nf // 2, 5, 2, 2, output_padding=1, bias=False)
            layers += [up, bn(nf // 2), nn.LeakyReLU(slope)]
            nf //= 2  # state size: nf x (2x the previous H) x (2x the previous W)
        layers += [nn.ConvTranspose2d(nf, channels, 5, 1, 2, bias=False), nn.Tanh()]
        self.body = nn.Sequential(*layers)  # state size: C x H x W

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] from latent vectors z (N, z_dim) and, for a
        conditional generator, labels: class indices (N,) or soft labels (N, n_classes)."""
        if not self.n_classes:
            if labels is not None:
                raise ValueError("labels given to an unconditional generator")
            return self.body(self.project(z).view(z.shape[0], *self.hidden))
        if labels is None:
            raise ValueError(f"a conditional generator ({self.n_classes} classes) needs labels")
        h = conditioned(self.project, z, labels).view(z.shape[0], *self.hidden)
        return conditioned(self.body, h, labels)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: append, per sample, how close it is to the rest of the batch."""

    def __init__(self, in_features: int, n_kernels: int = 32, kernel_dim: int = 8):
        super().__init__()
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in_features) with n_kernels closeness-to-the-batch features appended."""
        m = (x @ self.T).view(-1, self.n_kernels, self.kernel_dim)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (N, N, n_kernels)
        closeness = torch.exp(-l1).sum(1) - 1.0  # drop each sample's match with itself
        return torch.cat([x, closeness], dim=1)


class Critic(nn.Module):
    """Convolutional critic: one unbounded score per image (a logit for the GAN losses).

    Class-conditional with n_classes > 0: conditional="projection" adds <e_y, h> to the score
    psi(h) of the last features h; conditional="acgan" adds a classifier of h whose logits
    forward returns on request (the score itself stays unconditional).
    """

    def __init__(self, *, image_shape: tuple[int, int, int] = (1, 28, 28), n_filters: int = 64,
                 n_blocks: int = 2, norm: str = "batch", dropout: float = 0.3,
                 slope: float = 0.3, bn_momentum: float = 0.01, bn_eps: float = 1e-3,
                 spectral_norm: bool = False, minibatch_discrimination: bool = False,
                 keras_padding: bool = False, conditional: str = "none", n_classes: int = 0):
        super().__init__()
        channels, height, width = image_shape
        factor = check_image_size(image_shape, n_blocks)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers = [sn(nn.Conv2d(channels, n_filters, 5, 1, 2)),
                  _critic_norm(norm, n_filters, bn_momentum, bn_eps), nn.LeakyReLU(slope)]
        nf = n_filters  # state size: n_filters x H x W
        for _ in range(n_blocks):
            down = KerasSameConv2d(nf, nf * 2, 5, 2) if keras_padding else \
                nn.Conv2d(nf, nf * 2, 5, 2, 2)
            layers += [sn(down),
                       _critic_norm(norm, nf * 2, bn_momentum, bn_eps), nn.LeakyReLU(slope)]
            if dropout > 0:
                layers.append(Dropout(dropout))
            nf *= 2  # state size: nf x (H/2 the previous) x (W/2 the previous)
        self.features = nn.Sequential(*layers)
        final = (height // factor, width // factor)
        if minibatch_discrimination:
            self.mbd = MinibatchDiscrimination(nf * final[0] * final[1])
            self.head = sn(nn.Linear(nf * final[0] * final[1] + self.mbd.n_kernels, 1))
        else:
            self.mbd = None
            # a "valid" convolution over the whole feature map: one score per image
            self.head = sn(nn.Conv2d(nf, 1, final))
        if conditional not in ("none", "projection", "acgan"):
            raise ValueError(f"conditional must be none, projection or acgan; got {conditional!r}")
        width = nf * final[0] * final[1]  # size of the flattened last features h
        self.conditional = conditional if n_classes else "none"
        self.projection = ProjectionHead(n_classes, width) \
            if self.conditional == "projection" else None
        if self.projection is not None and spectral_norm:
            self.projection.embedding = sn(self.projection.embedding)
        self.classifier = sn(nn.Linear(width, n_classes)) if self.conditional == "acgan" else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                return_features: bool = False, return_logits: bool = False):
        """One score per image (N,); with return_features also the last features (N, D), with
        return_logits (AC-GAN) also the class logits (N, n_classes), in that order."""
        h = self.features(x)
        if self.mbd is not None:
            score = self.head(self.mbd(h.flatten(1)))
        else:
            score = self.head(h)
        score = score.view(x.shape[0])
        if self.projection is not None:
            if labels is None:
                raise ValueError("a projection critic needs the images' labels")
            score = score + self.projection(h.flatten(1), labels)
        extras = (h.flatten(1),) * return_features
        if return_logits:
            if self.classifier is None:
                raise ValueError("return_logits: this critic has no classifier (AC-GAN) head")
            extras += (self.classifier(h.flatten(1)),)
        return (score, *extras) if extras else score


def init_weights(module: nn.Module, scheme: str) -> None:
    """glorot: Keras's default (Glorot-uniform, zero bias); dcgan: N(0, 0.02); pytorch: as is."""
    if scheme == "pytorch":
        return
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") \
                else m.weight
            if scheme == "glorot":
                nn.init.xavier_uniform_(weight)
            elif scheme == "dcgan":
                nn.init.normal_(weight, 0.0, 0.02)
            else:
                raise ValueError(f"weight_init must be glorot, dcgan or pytorch; got {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and scheme == "dcgan":
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(cfg: ModelConfig, image_shape: tuple[int, int, int],
                    init: bool = True) -> Generator:
    """The generator of a model config: the one place that builds it, for training, loading,
    export and the hub alike (tests/test_round_trip.py checks every preset's round trip).
    init=False leaves PyTorch's initialisation (for weights about to be loaded)."""
    generator = Generator(
        z_dim=cfg.z_dim, image_shape=tuple(image_shape), n_filters=cfg.g_filters,
        n_blocks=cfg.n_blocks, slope=cfg.slope, bn_momentum=cfg.bn_momentum,
        bn_eps=cfg.bn_eps, keras_padding=cfg.padding == "keras", n_classes=n_classes(cfg))
    if init:
        init_weights(generator, cfg.weight_init)
    return generator


def build_critic(cfg: ModelConfig, image_shape: tuple[int, int, int],
                 init: bool = True) -> Critic:
    """The critic of a model config (the one place that builds it)."""
    critic = Critic(
        image_shape=tuple(image_shape), n_filters=cfg.c_filters, n_blocks=cfg.n_blocks,
        norm=cfg.critic_norm, dropout=cfg.dropout, slope=cfg.slope,
        bn_momentum=cfg.bn_momentum, bn_eps=cfg.bn_eps, spectral_norm=cfg.spectral_norm,
        minibatch_discrimination=cfg.minibatch_discrimination,
        keras_padding=cfg.padding == "keras", conditional=cfg.conditional,
        n_classes=n_classes(cfg))
    if init:
        init_weights(critic, cfg.weight_init)
    return critic


def build_models(cfg: ModelConfig, image_shape: tuple[int, int, int]) -> tuple[Generator, Critic]:
    """Both networks from a model config, initialised per `cfg.weight_init`. Both are built
    before either is initialised: the order in which the global random stream has always
    been drawn, so a seed gives the weights it gave before."""
    generator = build_generator(cfg, image_shape, init=False)
    critic = build_critic(cfg, image_shape, init=False)
    init_weights(generator, cfg.weight_init)
    init_weights(critic, cfg.weight_init)
    return generator, critic
