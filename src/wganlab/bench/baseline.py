"""The benchmark's baseline: the recipe written as a plain eager PyTorch step, inline.

No logging, no finiteness checks, no project helpers beyond the networks themselves: what
someone would write from the tutorial in an afternoon. The benchmark times it beside the
project's own step (runner.make_runner) on the same networks and data.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError
from ..training.optim import KerasAdam


def check_recipe(cfg: Config) -> None:
    """The baseline covers the WGAN-GP recipes (presets seed, wgan-gp, fast)."""
    t = cfg.train
    if (t.loss, t.penalty, t.optimizer) != ("wasserstein", "gp", "adam") or \
            t.feature_matching or t.clip:
        raise ConfigError(f"--presets: the baseline step is written for the wgan-gp loss with "
                          f"Adam (presets seed, wgan-gp); preset {cfg.preset!r} is not")


class PlainStep:
    """One generator step of the recipe in plain PyTorch: n_critic critic updates and one
    generator update, or the tutorial's shared step (one G forward feeds both losses)."""

    def __init__(self, cfg: Config, generator: nn.Module, critic: nn.Module,
                 images: torch.Tensor, device: torch.device):
        check_recipe(cfg)
        self.t, self.z_dim = cfg.train, cfg.model.z_dim
        self.G, self.C, self.images, self.device = generator, critic, images, device
        betas = tuple(self.t.betas)
        # The recipe's Adam: torch's form, or Keras's epsilon form for the tutorial's preset.
        adam = KerasAdam if self.t.adam_eps_form == "keras" else torch.optim.Adam
        eps = self.t.adam_eps
        self.g_opt = adam(generator.parameters(), lr=self.t.g_lr, betas=betas, eps=eps)
        self.c_opt = adam(critic.parameters(), lr=self.t.c_lr, betas=betas, eps=eps)

    def real(self, order: torch.Tensor, i: int) -> torch.Tensor:
        """Real batch i of the epoch order, as floats in [-1, 1]."""
        b = self.t.batch_size
        return self.images[order[i * b:(i + 1) * b]].float() / 127.5 - 1.0

    def z(self) -> torch.Tensor:
        """A batch of z: uniform in [-1, 1] or standard normal, as the recipe says."""
        shape = (self.t.batch_size, self.z_dim)
        if self.t.z_dist == "uniform":
            return torch.rand(shape, device=self.device) * 2 - 1
        return torch.randn(shape, device=self.device)

    def penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean (||grad C(x)|| - 1)^2 at random interpolates x of real and fake."""
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=self.device)
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        if self.t.gp_eval_mode:
            self.C.eval()
        (grad,) = torch.autograd.grad(self.C(x).sum(), x, create_graph=True)
        self.C.train()
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def critic_loss(self, real, fake) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's loss E[C(fake)] - E[C(real)] + gp_weight * penalty, and the fake scores."""
        # Real first, then fake, as the tutorial: with BatchNorm the order moves the running
        # statistics that an inference-mode penalty pass (preset seed) uses.
        d_real = self.C(real).view(-1)
        d_fake = self.C(fake).view(-1)
        loss = d_fake.mean() - d_real.mean() + self.t.gp_weight * self.penalty(
            real, fake.detach())
        return loss, d_fake

    def __call__(self, order: torch.Tensor, first: int) -> None:
        if self.t.shared_step:
            real = self.real(order, first)
            fake = self.G(self.z())
            c_loss, d_fake = self.critic_loss(real, fake)
            g_loss = -d_fake.mean()
            self.c_opt.zero_grad(set_to_none=True)
            self.g_opt.zero_grad(set_to_none=True)
            c_loss.backward(inputs=list(self.C.parameters()), retain_graph=True)
            g_loss.backward(inputs=list(self.G.parameters()))
            self.c_opt.step()
            self.g_opt.step()
            return
        for j in range(self.t.n_critic):
            real = self.real(order, first + j)
            with torch.no_grad():
                fake = self.G(self.z())
            c_loss, _ = self.critic_loss(real, fake)
            self.c_opt.zero_grad(set_to_none=True)
            c_loss.backward()
            self.c_opt.step()
        g_loss = -self.C(self.G(self.z())).mean()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(self.G.parameters()))
        self.g_opt.step()
