"""Critic overfitting, measured with held-out real images (ADA's r_v, Karras et al. 2020):

    overfit = (E[D(train)] - E[D(held-out)]) / (E[D(train)] - E[D(generated)])

0 when the critic scores real images it never trained on like those it trained on; 1 when it
scores them as low as generated images: it has memorised its training set instead of learning
what real images look like. A ratio of differences, so a Wasserstein critic's arbitrary
offset and scale drop out. Bounded to [-1, 1]: a critic that tells its training images from
held-out ones better than from generated ones (early in training the denominator can be near
0 or below) reads as 1, not as a huge number.
"""

from __future__ import annotations

import torch

from ..models import eval_mode

EPS = 1e-8  # the smallest denominator


def overfit_ratio(d_train: torch.Tensor, d_heldout: torch.Tensor, d_fake: torch.Tensor
                  ) -> torch.Tensor:
    """The heuristic from the critic's scores of the three kinds of image (any shapes)."""
    top = d_train.float().mean() - d_heldout.float().mean()
    bottom = d_train.float().mean() - d_fake.float().mean()
    return top / torch.maximum(bottom, top.abs()).clamp_min(EPS)


@torch.no_grad()
def critic_scores(critic: torch.nn.Module, images: torch.Tensor,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """The critic's scores in inference mode: no dropout draws and no BatchNorm updates, so
    measuring leaves the run exactly as it was. labels: the images' classes, for a
    class-conditional critic."""
    with eval_mode(critic):
        return (critic(images) if labels is None else critic(images, labels)).flatten()
