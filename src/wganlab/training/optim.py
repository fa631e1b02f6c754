"""The optimizers of a run, as its config names them, and Adam in Keras's form."""

from __future__ import annotations

import torch

from ..config import Config


class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras and TensorFlow compute it (tf.raw_ops.ApplyAdam, keras.optimizers.Adam):

        m <- m + (1 - b1) (g - m),   v <- v + (1 - b2) (g^2 - v)
        theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    Epsilon is added to the square root of the *uncorrected* second moment, so it acts like
    torch.optim.Adam's eps times 1 / sqrt(1 - b2^t): about 3.2e-6 at step 1 for eps 1e-7 and
    b2 0.999, settling to 1e-7 after a few thousand steps. Everything else is Adam.

    The state has torch.optim.Adam's keys (step, exp_avg, exp_avg_sq), and the step size is
    computed on tensors from the step counter, so with `capturable` (the counter on the
    parameters' device) a CUDA graph can capture the update: no value is read on the host.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-7, capturable: bool = False):
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"KerasAdam needs lr > 0, eps > 0, betas in [0, 1); "
                             f"got {lr}, {eps}, {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      capturable=capturable))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    where = p.device if group["capturable"] else "cpu"
                    state["step"] = torch.zeros((), dtype=torch.float32, device=where)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p,
                                                           memory_format=torch.preserve_format)
                step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                step.add_(1)
                m.lerp_(p.grad, 1 - b1)
                v.lerp_(p.grad * p.grad, 1 - b2)
                # A 0-dim tensor, not a Python float: no host sync, capturable. In the
                # parameter's precision, as Keras computes it.
                t = step.to(p.dtype)
                alpha = group["lr"] * (1 - b2 ** t).sqrt() / (1 - b1 ** t)
                p.sub_(m * alpha / (v.sqrt() + group["eps"]))
        return loss


def make_optimizer(cfg: Config, params, lr: float) -> torch.optim.Optimizer:
    """The config's optimizer over params at rate lr: RMSprop, or torch's or Keras's Adam."""
    t = cfg.train
    if t.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if t.adam_eps_form == "keras":
        return KerasAdam(params, lr=lr, betas=tuple(t.betas), eps=t.adam_eps)
    return torch.optim.Adam(params, lr=lr, betas=tuple(t.betas), eps=t.adam_eps)
