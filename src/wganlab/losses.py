"""Adversarial losses as small functions of critic outputs, and the critic's penalties.

Sign conventions follow the tutorial: every function returns a quantity to *minimise*.
A recipe is one entry of LOSSES (what the critic and the generator minimise) and one of
PENALTIES (how the critic is kept smooth); training/steps.py looks both up by name.
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


def class_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AC-GAN's auxiliary loss (Odena et al. 2017): the mean cross-entropy
    -log softmax(logits)[y] of the classifier's logits (N, K) for the classes y (N,)."""
    return F.cross_entropy(logits.float(), labels)


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Points on straight lines between paired real and fake samples (one alpha per sample)."""
    return alpha.view(-1, *([1] * (real.dim() - 1))) * real + \
        (1 - alpha.view(-1, *([1] * (real.dim() - 1)))) * fake


def input_gradient_norms(critic, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||_2, with the graph kept (create_graph=True) so that a penalty
    built on it can be differentiated with respect to the critic's weights."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    # vector_norm's backward is 0 at a zero gradient, where sqrt(sum(g**2)) would give NaN
    return torch.linalg.vector_norm(grad.flatten(1), dim=1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 18: mean over samples of (||grad_x D(x_hat)||_2 - 1)^2, x_hat between real and fake.

    Returns the penalty and the per-sample gradient norms (for health checks).
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device, generator=generator)
    norms = input_gradient_norms(critic, interpolate(real, fake.detach(), alpha))
    return (norms - 1.0).pow(2).mean(), norms.detach()


def r1_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor | None = None,
               alpha: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """R1 (Mescheder et al. 2018): (1/2) E ||grad_x D(x)||^2 on real images only, so that
    the weight is the paper's gamma. Returns the penalty and the per-sample norms."""
    norms = input_gradient_norms(critic, real)
    return 0.5 * norms.pow(2).mean(), norms.detach()


# Each loss: (the critic's loss of (real scores, fake scores), the generator's of fake scores).
LOSSES = {
    "wasserstein": (critic_wasserstein, generator_wasserstein),
    "hinge": (critic_hinge, generator_wasserstein),
    "non-saturating": (discriminator_gan, generator_nonsaturating),
    "minimax": (discriminator_gan, generator_minimax),
}
# Each penalty: a function (critic, real, fake, alpha) -> (penalty, per-sample gradient norms),
# and whether it needs interpolation weights alpha (one per sample, drawn with the batch).
PENALTIES = {
    "gp": (gradient_penalty, True),
    "r1": (r1_penalty, False),
    "none": (None, False),
}
