"""An exponential moving average (EMA) of the generator's weights, for sampling and evaluation.

    ema = GeneratorEMA(generator, decay=0.999)
    ema.update()        # after every generator step
    ema.module          # the averaged generator (eval mode for sampling)

After update k (k = 0, 1, ...) every parameter is

    ema <- beta_k * ema + (1 - beta_k) * raw,   beta_k = min(decay, (1 + k) / (10 + k))

The ramp in beta_k is the one TensorFlow's `tf.train.ExponentialMovingAverage` applies when
given `num_updates`: early on the average forgets fast (beta_0 = 0.1), so the first samples
are not dominated by the random initial weights.

BatchNorm buffers (running mean and variance) are copied from the raw generator, not averaged
(as NVIDIA's StyleGAN2-ADA code does): they are already running averages of the raw network's
activations, and averaging them again makes them lag further behind the weights; measured on
2 CPU cores it gave a worse FID than copying (docs/sweep-cpu.md).

`torch.optim.swa_utils.AveragedModel` holds the averaged copy and the update count (so both
are in its state_dict). Its own `update_parameters` reads the count on the host, which a CUDA
graph cannot capture, so `update` applies the same in-place foreach lerp as
`get_ema_multi_avg_fn` itself, with the ramp computed on the device: nothing in `update` syncs
with the host, and the CUDA-graph step may call it inside its capture.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

RAMP = (1.0, 10.0)  # beta_k = min(decay, (RAMP[0] + k) / (RAMP[1] + k))


def ramped_decay(decay: float, count: torch.Tensor) -> torch.Tensor:
    """beta_k = min(decay, (1 + k) / (10 + k)) for the 0-dim update count k, on its device."""
    k = count.to(torch.float32)
    return torch.clamp((RAMP[0] + k) / (RAMP[1] + k), max=decay)


class GeneratorEMA:
    """The averaged copy of `generator`; `update()` folds in the raw weights once."""

    def __init__(self, generator: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1); got {decay}")
        self.decay, self.raw = decay, generator
        # AveragedModel deep-copies the module; with use_buffers=False it leaves the buffers
        # alone, and update() copies them. A fresh copy starts equal to the raw weights.
        self.averaged = AveragedModel(generator, use_buffers=False).eval().requires_grad_(False)
        self.averaged.n_averaged.fill_(0)
        self._ema_params = [p.detach() for p in self.module.parameters()]
        self._raw_params = [p.detach() for p in generator.parameters()]
        self._ema_buffers = list(self.module.buffers())
        self._raw_buffers = list(generator.buffers())

    @property
    def module(self) -> nn.Module:
        """The averaged generator itself (an ordinary Generator)."""
        return self.averaged.module

    @property
    def count(self) -> int:
        """Updates folded in so far (k); reads the counter from the device."""
        return int(self.averaged.n_averaged)

    @torch.no_grad()
    def update(self) -> None:
        """ema <- lerp(ema, raw, 1 - beta_k); buffers copied; k += 1. Device work only."""
        beta = ramped_decay(self.decay, self.averaged.n_averaged)
        weight = (1.0 - beta).to(self._ema_params[0].dtype)
        torch._foreach_lerp_(self._ema_params, self._raw_params, weight)
        if self._ema_buffers:
            torch._foreach_copy_(self._ema_buffers, self._raw_buffers)
        self.averaged.n_averaged.add_(1)

    def state_dict(self) -> dict:
        """The averaged weights, BatchNorm buffers and the update count, as tensors."""
        return {"decay": self.decay, "averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Loads state_dict()'s weights, buffers and count in place; the decay stays as set."""
        # In place, so the lists update() holds keep pointing at the live tensors.
        self.averaged.load_state_dict(state["averaged"])

