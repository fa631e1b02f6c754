"""One generator step, written once: n_critic critic updates and a generator update, or the
tutorial's shared step, on one `Batch`.

Every runner (eager, CUDA graph, DDP; runner.py and fast.py) calls the same `Step`; they
differ only in how the batch reaches the device and in the `check` that finishes each
optimizer update: `HostCheck` reads finiteness back on the host (eager: stop or skip at
once), `DeviceCheck` keeps it on the device (a CUDA graph: nothing read back).

With --augment every image the critic scores passes through `seen` first (training/
augmenting.py: real and generated, in the critic's updates and in the generator's, so the
generator's gradient flows back through the augmentation). The penalty is taken on the
augmented images too: the gradient penalty at interpolates between the augmented real and
generated images the critic just scored, R1 at the augmented reals. The critic only ever
meets augmented images, so that is where it must be smooth; penalising it at plain
images would constrain it where it is never evaluated, and differentiating through the
augmentation (ADA's R1) would fold the transforms' own Jacobian (cutout's zeros, the shift)
into the norm that the penalty drives to 1.

The recipe is two table look-ups (losses.LOSSES, losses.PENALTIES): a new loss or penalty
is a new table entry, not a new branch here.

Conditional models (--conditional): each critic update scores its real batch and its fakes
with the *same* labels, the real batch's (the fakes are drawn for those classes), so the
penalty's interpolates between real i and fake i have one class, held fixed; the generator
update draws for the classes of the step's last real batch (batches.py). So the fakes follow
the data's class frequencies and no extra random number is drawn. AC-GAN adds the
classifier's cross-entropy (losses.class_cross_entropy, times --acgan-weight) on the real
images to the critic's loss and on the generated ones to the generator's, as Gulrajani et
al.'s AC-WGAN did: the classifier never learns to call fakes by their asked-for class.

Precision is the same on every path: with bf16 the forward passes and losses run under
autocast and the backward passes outside it.
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


class Check:
    """How an update is finished: its gradient norm logged, every term and gradient checked
    for finiteness, then `step_if` (the subclass's) steps the optimizer or not."""

    grad_norm = staticmethod(grad_norm)

    def __init__(self, on_nan: str):
        self.skip = on_nan == "skip"

    def __call__(self, optimizer, params: list, terms: dict, prefix: str) -> torch.Tensor:
        """Adds `{prefix}_grad_norm` to terms and finishes the update; the 0-dim bool "every
        term and gradient finite"."""
        terms[f"{prefix}_grad_norm"] = grad_norm(params)
        finite = torch.isfinite(torch.stack([v.float() for v in terms.values()])).all()
        self.step_if(optimizer, params, finite, terms)
        return finite

    def step_if(self, optimizer, params: list, finite: torch.Tensor, terms: dict) -> None:
        """Step the optimizer, or not, given `finite`."""
        raise NotImplementedError


class HostCheck(Check):
    """Finish an update on the host: step when every term and gradient is finite, else skip
    (on_nan="skip") or raise NonFiniteError. One device sync per update."""

    def step_if(self, optimizer, params: list, finite: torch.Tensor, terms: dict) -> None:
        """optimizer.step() when `finite`; else drop the gradients, or stop."""
        if bool(finite):
            optimizer.step()
        elif self.skip:
            optimizer.zero_grad(set_to_none=True)
        else:
            bad = [k for k, v in terms.items() if not torch.isfinite(v).all()]
            raise NonFiniteError(f"non-finite value in {', '.join(bad)}")


class DeviceCheck(Check):
    """Finish an update on the device: always step, and with on_nan="skip" undo the step
    where it was not finite (step_unless). Nothing is read back; the runner reads the
    step's "nonfinite" flag with its logged values."""

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
                 check: Check, device_type: str = "cpu", augment=None):
        self.t, self.check, self.augment = cfg.train, check, augment
        self.generator, self.critic, self.g_opt, self.c_opt = generator, critic, g_opt, c_opt
        self.critic_loss, self.generator_loss = losses.LOSSES[self.t.loss]
        self.penalty = losses.PENALTIES[self.t.penalty][0]
        self.bf16, self.device_type = cfg.speed.bf16, device_type
        self.acgan = cfg.model.conditional == "acgan"
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

    def seen(self, images: torch.Tensor) -> torch.Tensor:
        """The images as the critic sees them: augmented with --augment, else as they are."""
        return images if self.augment is None else self.augment(images)

    def scores(self, x, labels) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The critic's scores of x and, for AC-GAN, its classifier's cross-entropy on the
        labels (else None)."""
        if not self.acgan:
            return _call(self.critic, x, labels), None
        score, logits = self.critic(x, labels, return_logits=True)
        return score, self.each(losses.class_cross_entropy, logits, labels)

    def critic_terms(self, real, fake, alpha, labels=None) -> tuple[torch.Tensor, dict]:
        """The critic's loss on real vs fake (plus its penalty), and the numbers to log;
        terms["_d_fake"] and ["_fake_class"] keep the fake scores (and AC-GAN's class loss)
        with their graph (the shared step's)."""
        t, critic = self.t, self.critic
        real, fake = self.seen(real), self.seen(fake)
        (d_real, real_class), (d_fake, fake_class) = self.scores(real, labels), \
            self.scores(fake, labels)
        loss = self.each(self.critic_loss, d_real, d_fake).sum()
        terms = {"d_real": self.batch_mean(d_real), "d_fake": self.batch_mean(d_fake)}
        if real_class is not None:  # AC-GAN (per member: summed like the loss)
            loss = loss + t.acgan_weight * real_class.sum()
            terms["c_class_loss"] = real_class.detach()
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
        terms["_d_fake"], terms["_fake_class"] = d_fake, fake_class
        return loss, terms

    def generator_terms(self, fake, real, labels=None, d_fake=None, fake_class=None
                        ) -> tuple[torch.Tensor, dict]:
        """The generator's loss on its images (the critic's scores d_fake, and AC-GAN's class
        loss fake_class, when given)."""
        if self.t.feature_matching:  # (validation refuses it with AC-GAN)
            with torch.no_grad():
                _, f_real = _call(self.critic, self.seen(real), labels, return_features=True)
            _, f_fake = _call(self.critic, self.seen(fake), labels, return_features=True)
            each = self.each(losses.feature_matching, f_real, f_fake)
            return each.sum(), {"g_loss": each.detach()}
        if d_fake is None:
            d_fake, fake_class = self.scores(self.seen(fake), labels)
        each, terms = self.each(self.generator_loss, d_fake), {}
        if fake_class is not None:  # g_loss is the whole loss, as d_loss is the critic's
            each = each + self.t.acgan_weight * fake_class
            terms["g_class_loss"] = fake_class.detach()
        terms["g_loss"] = each.detach()
        return each.sum(), terms

    def critic_update(self, real, z, alpha, labels=None) -> tuple[dict, torch.Tensor]:
        """One critic update on real vs G(z), then --clip."""
        with torch.no_grad(), self.forward_precision():
            fake = _call(self.generator, z, labels)
        with self.forward_precision():
            loss, terms = self.critic_terms(real, fake, alpha, labels)
        del terms["_d_fake"], terms["_fake_class"]
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
            d_fake, fake_class = terms.pop("_d_fake"), terms.pop("_fake_class")
            # The very scores the critic's loss used, as the tutorial's single tape did.
            g_loss, g_terms = self.generator_terms(fake, real, labels, d_fake, fake_class)
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
