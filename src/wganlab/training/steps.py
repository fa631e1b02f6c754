"""One critic update, one generator update, and the tutorial's shared step.

Each update returns a dict of 0-dim tensors (losses and health statistics). Nothing here
synchronises with the device except the finiteness check before an optimizer step.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .. import losses
from ..config import TrainConfig
from ..errors import NonFiniteError


@contextlib.contextmanager
def eval_mode(module: nn.Module, enabled: bool = True):
    """Temporarily switch a module to inference mode (BatchNorm running stats, no dropout)."""
    was_training = module.training
    if enabled:
        module.eval()
    try:
        yield
    finally:
        module.train(was_training)


class _JointPass:
    """The critic as the penalty sees it, scoring real and fake in the same pass.

    Called with the interpolates, it runs the critic once on [real, fake, interpolates] and
    returns the interpolates' scores; the real and fake scores wait in d_real and d_fake.
    Sample k's score depends on sample k only (see kernels.batch_coupling), so the penalty's
    gradient with respect to the interpolates is the one a separate pass would give.
    """

    def __init__(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor):
        self.critic, self.real, self.fake = critic, real, fake
        self.d_real = self.d_fake = None

    def __call__(self, x_hat: torch.Tensor) -> torch.Tensor:
        n = len(self.real)
        scores = self.critic(torch.cat([self.real, self.fake, x_hat]))
        self.d_real, self.d_fake, d_hat = scores.split([n, len(self.fake), len(x_hat)])
        return d_hat


def _scores(t: TrainConfig, critic: nn.Module, real, fake, rng, concat: bool):
    """d_real, d_fake and, for wgan-gp, the penalty and its per-sample gradient norms."""
    if concat and t.loss == "wgan-gp":
        joint = _JointPass(critic, real, fake)
        gp, norms = losses.gradient_penalty(joint, real, fake.detach(), generator=rng)
        return joint.d_real, joint.d_fake, gp, norms
    if concat:
        d_real, d_fake = critic(torch.cat([real, fake])).split([len(real), len(fake)])
    else:
        d_real, d_fake = critic(real), critic(fake)
    if t.loss != "wgan-gp":
        return d_real, d_fake, None, None
    # The tutorial's Keras code called the critic without training=True here.
    with eval_mode(critic, t.gp_eval_mode):
        gp, norms = losses.gradient_penalty(critic, real, fake.detach(), generator=rng)
    return d_real, d_fake, gp, norms


def critic_terms(t: TrainConfig, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                 rng: torch.Generator | None, concat: bool = False) -> tuple[torch.Tensor, dict]:
    """The critic's loss for one batch and the numbers worth logging.

    concat: score real, fake (and the penalty's interpolates) in one critic pass. Only for a
    critic without batch coupling or mode-dependent layers (kernels.batch_coupling is empty).
    """
    d_real, d_fake, gp, norms = _scores(t, critic, real, fake, rng, concat)
    terms = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}
    if t.loss in ("wgan-gp", "wgan"):
        loss = losses.critic_wasserstein(d_real, d_fake)
    elif t.loss == "hinge":
        loss = losses.critic_hinge(d_real, d_fake)
    else:
        loss = losses.discriminator_gan(d_real, d_fake)
    if gp is not None:
        loss = loss + t.gp_weight * gp
        terms.update(gp=gp.detach(), gp_norm_mean=norms.mean(), gp_norm_std=norms.std(),
                     gp_norm_near_1=((norms - 1).abs() <= 0.1).float().mean())
    terms["d_loss"] = loss.detach()
    terms["_d_fake"] = d_fake  # with its graph, for the tutorial's shared step
    return loss, terms


def generator_loss(t: TrainConfig, d_fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss from the critic's scores of generated images."""
    if t.loss in ("wgan-gp", "wgan", "hinge"):
        return losses.generator_wasserstein(d_fake)
    if t.loss == "gan-minimax":
        return losses.generator_minimax(d_fake)
    return losses.generator_nonsaturating(d_fake)


def generator_terms(t: TrainConfig, critic: nn.Module, fake: torch.Tensor,
                    real: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """The generator's loss for one batch of generated images."""
    if t.feature_matching:
        with torch.no_grad():
            _, f_real = critic(real, return_features=True)
        _, f_fake = critic(fake, return_features=True)
        loss = losses.feature_matching(f_real, f_fake)
    else:
        loss = generator_loss(t, critic(fake))
    return loss, {"g_loss": loss.detach()}


def _grad_norm(params) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def apply_update(optimizer: torch.optim.Optimizer, params: list, terms: dict, prefix: str,
                 on_nan: str) -> bool:
    """Step the optimizer if every term and gradient is finite; else stop or skip."""
    terms[f"{prefix}_grad_norm"] = _grad_norm(params)
    values = torch.stack([v.float() for v in terms.values()])
    if bool(torch.isfinite(values).all()):
        optimizer.step()
        return True
    bad = [k for k, v in terms.items() if not torch.isfinite(v)]
    if on_nan == "skip":
        optimizer.zero_grad(set_to_none=True)
        return False
    raise NonFiniteError(f"non-finite value in {', '.join(bad)}", )


def clip_weights(critic: nn.Module, bound: float) -> torch.Tensor:
    """Original WGAN: clamp every critic weight; returns the share sitting at the bound."""
    at_bound, total = 0, 0
    with torch.no_grad():
        for p in critic.parameters():
            p.clamp_(-bound, bound)
            at_bound += (p.abs() >= bound * 0.999).sum()
            total += p.numel()
    return at_bound / total


def critic_update(t, generator, critic, opt, real, z, rng, on_nan,
                  concat: bool = False) -> tuple[dict, bool]:
    """One critic update on real vs G(z), then --clip; returns the terms and whether it stepped."""
    with torch.no_grad():
        fake = generator(z)
    loss, terms = critic_terms(t, critic, real, fake, rng, concat)
    del terms["_d_fake"]
    params = [p for p in critic.parameters() if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    ok = apply_update(opt, params, terms, "c", on_nan)
    if t.clip is not None:
        # Also after a skipped update, so that every update reports the same terms.
        terms["clip_share"] = clip_weights(critic, t.clip)
    return terms, ok


def generator_update(t, generator, critic, opt, z, real, on_nan) -> tuple[dict, bool]:
    """One generator update on G(z); returns the terms and whether it stepped."""
    loss, terms = generator_terms(t, critic, generator(z), real)
    params = [p for p in generator.parameters() if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    return terms, apply_update(opt, params, terms, "g", on_nan)


def shared_update(t, generator, critic, g_opt, c_opt, real, z, rng, on_nan,
                  concat: bool = False) -> tuple[dict, bool]:
    """The tutorial's step: one generator forward feeds both losses; both gradients are taken
    before either network changes, then both optimizers step."""
    fake = generator(z)
    c_loss, terms = critic_terms(t, critic, real, fake, rng, concat)
    d_fake = terms.pop("_d_fake")
    if t.feature_matching:
        g_loss, g_terms = generator_terms(t, critic, fake, real)
    else:  # the very scores the critic loss used, as the tutorial's single tape did
        g_loss = generator_loss(t, d_fake)
        g_terms = {"g_loss": g_loss.detach()}
    terms.update(g_terms)
    c_params = [p for p in critic.parameters() if p.requires_grad]
    g_params = [p for p in generator.parameters() if p.requires_grad]
    c_opt.zero_grad(set_to_none=True)
    g_opt.zero_grad(set_to_none=True)
    c_loss.backward(inputs=c_params, retain_graph=True)
    g_loss.backward(inputs=g_params)
    terms["c_grad_norm"] = _grad_norm(c_params)
    ok = apply_update(g_opt, g_params, terms, "g", on_nan)
    if ok:
        c_opt.step()
    else:
        c_opt.zero_grad(set_to_none=True)
    return terms, ok

