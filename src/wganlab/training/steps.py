"""One generator step, written once: n_critic critic updates and a generator update, or the
tutorial's shared step, on one `Batch`.

Every runner (eager, CUDA graph, DDP; runner.py and fast.py) calls the same `Step`; they
differ only in how the batch reaches the device and in the `check` that finishes each
optimizer update: `HostCheck` reads finiteness back on the host (eager: stop or skip at
once), `DeviceCheck` keeps it on the device (a CUDA graph: nothing read back).

The recipe is two table look-ups (losses.LOSSES, losses.PENALTIES): a new loss or penalty
is a new table entry, not a new branch here. Precision is the same on every path: with bf16
the forward passes and losses run under autocast and the backward passes outside it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..config import Config
from ..errors import NonFiniteError
from ..models import eval_mode


@dataclass
class Batch:
    """Everything one generator step consumes, drawn before it runs.

    k is the number of critic updates (n_critic, or 1 for the shared step); b the images per
    update on this process.
    """

    reals: torch.Tensor  # (k, b, C, H, W) floats in [-1, 1], one real batch per critic update
    z: torch.Tensor  # (k + 1, b, z_dim): one per critic update, then the generator's; (1, ...)
    #                  for the shared step, whose one generator forward feeds both updates
    alphas: torch.Tensor | None  # (k, b): the gradient penalty's interpolation weights
    labels: torch.Tensor | None = None  # (k + 1, b) class indices, for conditional models


def grad_norm(params) -> torch.Tensor:
    """The total 2-norm of the parameters' gradients (0 when none has one)."""
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def _all_finite(terms: dict) -> torch.Tensor:
    return torch.isfinite(torch.stack([v.float() for v in terms.values()])).all()


class HostCheck:
    """Finish an update on the host: step when every term and gradient is finite, else skip
    (on_nan="skip") or raise NonFiniteError. One device sync per update."""

    grad_norm = staticmethod(grad_norm)

    def __init__(self, on_nan: str):
        self.skip = on_nan == "skip"

    def __call__(self, optimizer, params: list, terms: dict, prefix: str) -> torch.Tensor:
        """Adds `{prefix}_grad_norm` to terms, steps if all is finite; the 0-dim bool."""
        terms[f"{prefix}_grad_norm"] = grad_norm(params)
        finite = _all_finite(terms)
        self.step_if(optimizer, params, finite, terms)
        return finite

    def step_if(self, optimizer, params: list, finite: torch.Tensor, terms: dict) -> None:
        """optimizer.step() when `finite`; else drop the gradients, or stop."""
        if bool(finite):
            optimizer.step()
        elif self.skip:
            optimizer.zero_grad(set_to_none=True)
        else:
            bad = [k for k, v in terms.items() if not torch.isfinite(v).all()]
            raise NonFiniteError(f"non-finite value in {', '.join(bad)}")


class DeviceCheck:
    """Finish an update on the device: always step, and with on_nan="skip" undo the step
    where it was not finite (step_unless). Nothing is read back; the runner reads the
    step's "nonfinite" flag with its logged values."""

    grad_norm = staticmethod(grad_norm)

    def __init__(self, on_nan: str):
        self.skip = on_nan == "skip"

    def __call__(self, optimizer, params: list, terms: dict, prefix: str) -> torch.Tensor:
        """Adds `{prefix}_grad_norm` to terms, steps; the 0-dim bool "all finite"."""
        terms[f"{prefix}_grad_norm"] = grad_norm(params)
        finite = _all_finite(terms)
        self.step_if(optimizer, params, finite, terms)
        return finite

    def step_if(self, optimizer, params: list, finite: torch.Tensor, terms: dict) -> None:
        """optimizer.step(), undone on the device where `finite` is false (with skip)."""
        step_unless(optimizer, params, ~finite if self.skip else None)


def _state_tensors(optimizer, params) -> list[torch.Tensor]:
    return [v for p in params for v in optimizer.state.get(p, {}).values()
            if isinstance(v, torch.Tensor)]


def step_unless(optimizer, params: list, bad: torch.Tensor | None) -> None:
    """optimizer.step(), undone on the device where the 0-dim bool `bad` is true (or, for an
    ensemble's stacked tensors, bad (N,): member k's rows where bad[k]; see members.py)."""
    if bad is None:
        optimizer.step()
        return
    saved = {id(t): t.clone() for t in list(params) + _state_tensors(optimizer, params)}
    optimizer.step()
    with torch.no_grad():
        for t in list(params) + _state_tensors(optimizer, params):
            # State born in this very step (the first one) goes back to its fresh zeros.
            old = saved.get(id(t))
            t.copy_(torch.where(_rows(bad, t), torch.zeros_like(t) if old is None else old, t))


def _rows(bad: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`bad` shaped to pick t's rows: per member for stacked tensors; a 0-dim counter shared
    by all members goes back only when every member was bad."""
    if bad.dim() == 0:
        return bad
    if t.dim() == 0:
        return bad.all()
    return bad.view(-1, *[1] * (t.dim() - 1))


def clip_weights(critic: nn.Module, bound: float) -> torch.Tensor:
    """Original WGAN: clamp every critic weight; returns the share sitting at the bound."""
    at_bound, total = 0, 0
    with torch.no_grad():
        for p in critic.parameters():
            p.clamp_(-bound, bound)
            at_bound += (p.abs() >= bound * 0.999).sum()
            total += p.numel()
    return at_bound / total


def _call(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, **kw):
    """net(x), or net(x, labels) for a conditional network."""
    return net(x, **kw) if labels is None else net(x, labels, **kw)


class Step:
    """The step body: `step(batch)` -> (terms, ok), terms a dict of 0-dim tensors to log and
    ok the 0-dim bool "every update was finite"."""

    def __init__(self, cfg: Config, generator: nn.Module, critic: nn.Module, g_opt, c_opt,
                 check: HostCheck | DeviceCheck, device_type: str = "cpu"):
        self.t, self.check = cfg.train, check
        self.generator, self.critic, self.g_opt, self.c_opt = generator, critic, g_opt, c_opt
        self.critic_loss, self.generator_loss = losses.LOSSES[self.t.loss]
        self.penalty = losses.PENALTIES[self.t.penalty][0]
        self.bf16, self.device_type = cfg.speed.bf16, device_type
        self.members = cfg.train.ensemble  # stacked independent networks (ensemble.py)

    # An ensemble's batches are member-major (N*b rows); each member minimises its own loss,
    # so the loss to differentiate is the sum over members of each member's mean, and the
    # values to log are (N,) vectors (one per member; expanded by members.expand).
    def each(self, fn, *xs) -> torch.Tensor:
        """fn on the batch (one network), or the (N,) vector of fn on each member's share."""
        if self.members == 1:
            return fn(*xs)
        return torch.vmap(fn)(*(x.unflatten(0, (self.members, -1)) for x in xs))

    def batch_mean(self, x: torch.Tensor, fn=torch.mean) -> torch.Tensor:
        """x's mean (or fn) over the batch, per member for an ensemble; detached."""
        return self.each(fn, x.detach())

    def forward_precision(self):
        """bf16 autocast for forward passes and losses (--bf16), nothing otherwise."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def critic_terms(self, real, fake, alpha, labels=None) -> tuple[torch.Tensor, dict]:
        """The critic's loss on real vs fake (plus its penalty), and the numbers to log;
        terms["_d_fake"] keeps the fake scores with their graph (the shared step's)."""
        t, critic = self.t, self.critic
        d_real, d_fake = _call(critic, real, labels), _call(critic, fake, labels)
        loss = self.each(self.critic_loss, d_real, d_fake).sum()
        terms = {"d_real": self.batch_mean(d_real), "d_fake": self.batch_mean(d_fake)}
        if self.penalty is not None:
            # The tutorial's Keras code called the critic without training=True here.
            scored = critic if labels is None else (lambda x: critic(x, labels))
            with eval_mode(critic, t.gp_eval_mode):
                penalty, norms = self.penalty(scored, real, fake.detach(), alpha)
            # A mean over all N*b samples: times N, the sum of the members' means.
            loss = loss + t.gp_weight * penalty * self.members
            # Logged under the penalty's name ("gp", "r1"): the health rules and plots that
            # expect norms near 1 read only the gradient penalty's.
            name = t.penalty
            terms.update({name: penalty.detach(), f"{name}_norm_mean": self.batch_mean(norms),
                          f"{name}_norm_std": self.batch_mean(norms, torch.std)})
            if name == "gp":
                terms["gp_norm_near_1"] = self.batch_mean(((norms - 1).abs() <= 0.1).float())
        terms["d_loss"] = loss.detach() / self.members
        terms["_d_fake"] = d_fake
        return loss, terms

    def generator_terms(self, fake, real, labels=None, d_fake=None) -> tuple[torch.Tensor, dict]:
        """The generator's loss on its images (the critic's scores d_fake when given)."""
        if self.t.feature_matching:
            with torch.no_grad():
                _, f_real = _call(self.critic, real, labels, return_features=True)
            _, f_fake = _call(self.critic, fake, labels, return_features=True)
            each = self.each(losses.feature_matching, f_real, f_fake)
        else:
            each = self.each(self.generator_loss, _call(self.critic, fake, labels)
                             if d_fake is None else d_fake)
        return each.sum(), {"g_loss": each.detach()}

    def critic_update(self, real, z, alpha, labels=None) -> tuple[dict, torch.Tensor]:
        """One critic update on real vs G(z), then --clip."""
        with torch.no_grad(), self.forward_precision():
            fake = _call(self.generator, z, labels)
        with self.forward_precision():
            loss, terms = self.critic_terms(real, fake, alpha, labels)
        del terms["_d_fake"]
        params = [p for p in self.critic.parameters() if p.requires_grad]
        self.c_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        ok = self.check(self.c_opt, params, terms, "c")
        if self.t.clip is not None:
            # Also after a skipped update (a no-op then: the weights were clipped already).
            terms["clip_share"] = clip_weights(self.critic, self.t.clip)
        return terms, ok

    def generator_update(self, z, real, labels=None) -> tuple[dict, torch.Tensor]:
        """One generator update on G(z) (real: the features feature matching aims at)."""
        with self.forward_precision():
            loss, terms = self.generator_terms(_call(self.generator, z, labels), real, labels)
        params = [p for p in self.generator.parameters() if p.requires_grad]
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        return terms, self.check(self.g_opt, params, terms, "g")

    def shared_update(self, real, z, alpha, labels=None) -> tuple[dict, torch.Tensor]:
        """The tutorial's step: one generator forward feeds both losses; both gradients are
        taken before either network changes, then both optimizers step."""
        with self.forward_precision():
            fake = _call(self.generator, z, labels)
            c_loss, terms = self.critic_terms(real, fake, alpha, labels)
            d_fake = terms.pop("_d_fake")
            # The very scores the critic's loss used, as the tutorial's single tape did.
            g_loss, g_terms = self.generator_terms(fake, real, labels, d_fake)
        terms.update(g_terms)
        c_params = [p for p in self.critic.parameters() if p.requires_grad]
        g_params = [p for p in self.generator.parameters() if p.requires_grad]
        self.c_opt.zero_grad(set_to_none=True)
        self.g_opt.zero_grad(set_to_none=True)
        c_loss.backward(inputs=c_params, retain_graph=True)
        g_loss.backward(inputs=g_params)
        terms["c_grad_norm"] = self.check.grad_norm(c_params)
        ok = self.check(self.g_opt, g_params, terms, "g")
        self.check.step_if(self.c_opt, c_params, ok, terms)
        return terms, ok

    def __call__(self, batch: Batch) -> tuple[dict, torch.Tensor]:
        """One generator step on `batch`; the averaged terms and "all finite"."""
        labels = batch.labels if batch.labels is not None else [None] * len(batch.z)
        alphas = batch.alphas if batch.alphas is not None else [None] * len(batch.reals)
        if self.t.shared_step:
            return self.shared_update(batch.reals[0], batch.z[0], alphas[0], labels[0])
        # Update the critic n_critic times, each on a fresh real batch.
        c_terms, oks = [], []
        for j in range(len(batch.reals)):
            terms, ok = self.critic_update(batch.reals[j], batch.z[j], alphas[j], labels[j])
            c_terms.append(terms)
            oks.append(ok)
        terms = {k: torch.stack([c[k] for c in c_terms]).mean(0) for k in c_terms[-1]}
        # Update the generator once.
        g_terms, g_ok = self.generator_update(batch.z[-1], batch.reals[-1], labels[-1])
        terms.update(g_terms)
        return terms, torch.stack(oks + [g_ok]).all()
