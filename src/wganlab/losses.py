"""Adversarial losses as small functions of critic outputs, and the gradient penalty.

Sign conventions follow the tutorial: every function returns a quantity to *minimise*.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def critic_wasserstein(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Eqs. 16-17: L_D = -E[D(x)] + E[D(G(z))]."""
    return d_fake.mean() - d_real.mean()


def generator_wasserstein(d_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 15: L_G = -E[D(G(z))]. Also the generator's hinge loss."""
    return -d_fake.mean()


def discriminator_gan(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: -log D(x) - log(1 - D(G(z))), with D = sigmoid(logits)."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_minimax(logits_fake: torch.Tensor) -> torch.Tensor:
    """Goodfellow et al.'s original: minimise log(1 - D(G(z))); saturates early on."""
    return -F.softplus(logits_fake).mean()


def generator_nonsaturating(logits_fake: torch.Tensor) -> torch.Tensor:
    """The usual fix: minimise -log D(G(z))."""
    return F.softplus(-logits_fake).mean()


def critic_hinge(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The critic's hinge loss (Lim & Ye 2017; Miyato et al. 2018): scores past +-1 cost 0."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def feature_matching(features_real: torch.Tensor, features_fake: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016: || E f(x) - E f(G(z)) ||^2 over an intermediate critic layer."""
    return (features_real.mean(0) - features_fake.mean(0)).pow(2).sum()


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Points on straight lines between paired real and fake samples (one alpha per sample)."""
    return alpha.view(-1, *([1] * (real.dim() - 1))) * real + \
        (1 - alpha.view(-1, *([1] * (real.dim() - 1)))) * fake


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 18: mean over samples of (||grad_x D(x_hat)||_2 - 1)^2, x_hat between real and fake.

    Returns the penalty and the per-sample gradient norms (for health checks). The graph is
    kept (create_graph=True) so the penalty can be differentiated w.r.t. the critic's weights.
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device, generator=generator)
    x_hat = interpolate(real, fake, alpha).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    # vector_norm's backward is 0 at a zero gradient, where sqrt(sum(g**2)) would give NaN
    norms = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return (norms - 1.0).pow(2).mean(), norms.detach()
