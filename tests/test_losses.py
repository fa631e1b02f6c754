import math

import torch
from torch import nn

from wganlab import losses


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1)


def test_gradient_penalty_linear_critic_with_weight_norm_3_is_exactly_4():
    # Norm 3, not 2: at norm 2, (n - 1)^2 = n - 1 = 1 and a missing square would not show.
    w = torch.zeros(1 * 4 * 4)
    w[0], w[5] = 1.8, 2.4  # norm 3
    critic = Linear(w)
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    gp, norms = losses.gradient_penalty(critic, real, fake)
    assert torch.allclose(norms, torch.full((8,), 3.0))
    assert math.isclose(gp.item(), 4.0, rel_tol=1e-6)


def test_gradient_penalty_is_differentiable_wrt_critic_weights():
    w = torch.full((16,), 0.75)  # norm 3, gradient of (||w|| - 1)^2 is 2(||w||-1) w/||w||
    critic = Linear(w)
    gp, _ = losses.gradient_penalty(critic, torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4))
    gp.backward()
    assert torch.allclose(critic.w.grad, 2 * (3 - 1) * w / 3)


def test_gradient_penalty_zero_gradient_gives_no_nan():
    critic = Linear(torch.zeros(16))
    gp, norms = losses.gradient_penalty(critic, torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4))
    gp.backward()
    assert gp.item() == 1.0 and torch.all(norms == 0)
    assert torch.isfinite(critic.w.grad).all()


def test_interpolate_endpoints():
    real, fake = torch.ones(2, 1, 2, 2), -torch.ones(2, 1, 2, 2)
    x = losses.interpolate(real, fake, torch.tensor([1.0, 0.0]))
    assert torch.equal(x[0], real[0]) and torch.equal(x[1], fake[1])


def test_wasserstein_losses_follow_the_tutorial_equations():
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert losses.critic_wasserstein(d_real, d_fake).item() == -0.5 - 2.0
    assert losses.generator_wasserstein(d_fake).item() == 0.5


def test_gan_losses_with_logits():
    zero = torch.zeros(3)
    assert math.isclose(losses.discriminator_gan(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(losses.generator_nonsaturating(zero).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(losses.generator_minimax(zero).item(), -math.log(2), rel_tol=1e-6)
    big = torch.tensor([50.0])
    assert losses.discriminator_gan(big, -big).item() < 1e-10
    assert losses.generator_nonsaturating(-big).item() > 49  # no saturation at -inf logits


def test_hinge_and_feature_matching():
    assert losses.critic_hinge(torch.tensor([2.0]), torch.tensor([-2.0])).item() == 0
    assert losses.critic_hinge(torch.tensor([0.0]), torch.tensor([0.0])).item() == 2
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert losses.feature_matching(a, b).item() == 2.0 ** 2 + 3.0 ** 2


class Quadratic(nn.Module):
    """D(x) = (a/2) ||x||^2: its input gradient a x differs from point to point, so a penalty
    taken at the wrong points shows."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)


def test_r1_is_half_the_mean_squared_gradient_norm_at_the_real_images():
    real = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)  # norms 5 and 1
    fake = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    critic = Quadratic(2.0)  # gradient norms 2 ||x||: 10 and 2 at the reals
    penalty, norms = losses.r1_penalty(critic, real, fake)
    assert torch.equal(norms, torch.tensor([10.0, 2.0], dtype=torch.float64))
    assert penalty.item() == 0.5 * (100 + 4) / 2
    # d/da of (1/2) mean (a ||x||)^2 = a mean ||x||^2 = 2 * 13
    (grad,) = torch.autograd.grad(penalty, critic.a)
    assert grad.item() == 26.0
    assert losses.PENALTIES["r1"] == (losses.r1_penalty, False)


def test_gradient_penalty_is_taken_at_the_interpolates():
    real = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    fake = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    alpha = torch.tensor([0.5], dtype=torch.float64)  # x_hat = (2, 2), norm sqrt(8)
    penalty, norms = losses.gradient_penalty(Quadratic(1.0), real, fake, alpha)
    assert math.isclose(norms.item(), math.sqrt(8), rel_tol=1e-15)
    assert math.isclose(penalty.item(), (math.sqrt(8) - 1) ** 2, rel_tol=1e-15)
