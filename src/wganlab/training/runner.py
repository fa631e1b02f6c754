"""One generator step of training, as train.py runs it: eager, DDP-sharded, or one CUDA graph.

`make_runner` picks the way; every runner has `step(order, first) -> dict of 0-dim tensors`
(the values to log, plus "nonfinite": 1 when the step met a NaN/Inf) and `mode`/`reason`
strings saying how it runs and, when eager on CUDA, why. `speed` is the Speed it runs with
(the asked-for one, less what cannot apply here) and `notes` says what was left out and why.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace

import torch

from ..base.device import fit_threads
from ..config import Config
from ..data import sample_z, to_float
from . import distributed, fast, kernels
from .distributed import Shard
from .kernels import Speed
from .steps import critic_update, generator_update, shared_update

__all__ = ["EagerStep", "Speed", "make_runner"]


class EagerStep:
    """The steps.* updates in order, one finiteness check (a host sync) per optimizer step.

    With several processes (Shard.world > 1) the modules are DDP wrappers, each rank takes its
    slice of every batch, and the shared noise stream is consumed as in a one-process run
    (see distributed.py for why).
    """

    mode = "eager"

    def __init__(self, cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                 noise: torch.Generator, device: torch.device, shard: Shard = Shard(),
                 speed: Speed = Speed()):
        self.cfg, self.t, self.on_nan = cfg, cfg.train, cfg.run.on_nan
        self.generator, self.critic, self.g_opt, self.c_opt = generator, critic, g_opt, c_opt
        self.images, self.noise, self.device, self.shard = images, noise, device, shard
        self.speed, self.reason, self.notes = speed, "", []
        self.last_real: torch.Tensor | None = None  # the step's last real batch (health checks)
        self.flags = {ok: torch.tensor(float(not ok), device=device) for ok in (True, False)}

    def batch(self, order: torch.Tensor, i: int) -> torch.Tensor:
        """This rank's part of the i-th batch of the epoch order, as floats in [-1, 1]."""
        fast.check_batches(order, i, 1, self.t.batch_size)
        b = self.shard.local(self.t.batch_size)
        start = i * self.t.batch_size + self.shard.rank * b
        real = to_float(self.images[order[start:start + b]].to(self.device, non_blocking=True))
        return kernels.layout(real, self.speed.channels_last)

    def z(self) -> torch.Tensor:
        """This rank's slice of a global batch of z from the shared noise stream."""
        z = sample_z(self.t.batch_size, self.cfg.model.z_dim, self.t.z_dist, self.noise,
                     self.device)
        return self.shard.take(z)

    def _other_ranks_alphas(self, before: bool) -> None:
        # The penalty draws this rank's interpolation weights; draw and drop the other ranks'
        # so the noise stream advances as in a one-process run of the global batch.
        if self.t.loss != "wgan-gp" or self.shard.world == 1:
            return
        n = self.shard.local(self.t.batch_size) * (
            self.shard.rank if before else self.shard.world - 1 - self.shard.rank)
        if n:
            torch.rand(n, generator=self.noise, device=self.noise.device)

    def _precision(self):
        if not self.speed.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def step(self, order: torch.Tensor, first: int) -> dict[str, torch.Tensor]:
        """One generator step from batch `first` of `order`; returns the values to log."""
        t, G, C, concat = self.t, self.generator, self.critic, self.speed.concat_critic
        # Refuse a step that would run out of data before it changes anything.
        fast.check_batches(order, first, 1 if t.shared_step else t.n_critic, t.batch_size)
        with self._precision(), kernels.cudnn_benchmark(self.speed.cudnn_benchmark):
            if t.shared_step:
                # The tutorial's step: one forward of G feeds both updates.
                real, z = self.batch(order, first), self.z()
                self._other_ranks_alphas(before=True)
                terms, ok = shared_update(t, G, C, self.g_opt, self.c_opt, real, z,
                                          self.noise, self.on_nan, concat)
                self._other_ranks_alphas(before=False)
            else:
                # Update the critic n_critic times, each on a fresh real batch.
                c_terms, ok = [], True
                for j in range(t.n_critic):
                    real, z = self.batch(order, first + j), self.z()
                    self._other_ranks_alphas(before=True)
                    ct, c_ok = critic_update(t, G, C, self.c_opt, real, z, self.noise,
                                             self.on_nan, concat)
                    self._other_ranks_alphas(before=False)
                    c_terms.append(ct)
                    ok = ok and c_ok
                # A skipped update has no clip_share; average what every update has.
                keys = [k for k in c_terms[-1] if all(k in c for c in c_terms)]
                terms = {k: torch.stack([c[k] for c in c_terms]).mean() for k in keys}
                # Update the generator once.
                g_terms, g_ok = generator_update(t, G, C, self.g_opt, self.z(), real,
                                                 self.on_nan)
                terms.update(g_terms)
                ok = ok and g_ok
        terms["nonfinite"] = self.flags[ok]
        self.last_real = real
        return terms


def applicable(speed: Speed, cfg: Config, critic, device: torch.device
               ) -> tuple[Speed, list[str]]:
    """The switches of `speed` that apply to this run, and a note for each one dropped."""
    notes = []
    if speed.concat_critic and (why := kernels.batch_coupling(critic)):
        speed = replace(speed, concat_critic=False)
        notes.append(f"concat-critic not used: {'; '.join(why)}")
    if speed.cudnn_benchmark and (device.type != "cuda" or cfg.run.deterministic):
        speed = replace(speed, cudnn_benchmark=False)
        if device.type == "cuda":  # timing-picked algorithms differ from run to run
            notes.append("cudnn-benchmark not used: --deterministic")
    return speed, notes


def make_runner(cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                noise: torch.Generator, device: torch.device, shard: Shard = Shard(),
                speed: Speed = Speed()):
    """The step train.py runs: one CUDA graph where possible, else eager (DDP when sharded).

    Call after any checkpoint is loaded: it sets the optimizers' capturable and fused flags
    (and, with channels_last, the weights' and optimizer state's memory layout).
    """
    if device.type == "cpu":
        fit_threads()
    speed, notes = applicable(speed, cfg, critic, device)
    for note in notes:
        print(f"wganlab: {note}", file=sys.stderr)
    if speed.channels_last:
        kernels.to_channels_last(generator, critic)
    G = distributed.wrap(generator, device, shard)
    C = distributed.wrap(critic, device, shard)

    def eager():
        return EagerStep(cfg, G, C, g_opt, c_opt, images, noise, device, shard, speed)

    blockers = fast.graph_blockers(cfg, device, images, shard.world, speed.cuda_graph)
    for opt in (g_opt, c_opt):
        kernels.prepare_optimizer(opt, capturable=not blockers, fused=speed.fused_optimizer)
        kernels.match_state_layout(opt)
    if blockers:
        runner = eager()
        runner.reason = "; ".join(blockers)
    else:
        runner = fast.GraphStep(fast.StaticStep(cfg, generator, critic, g_opt, c_opt, images,
                                                noise, device, speed), eager)
    runner.speed, runner.notes = speed, notes
    return runner
