"""One generator step of training, as the loop runs it: eager, DDP-sharded, or one CUDA graph.

`make_runner` picks the way; every runner has `step(order, first) -> dict of 0-dim tensors`
(the values to log, plus "nonfinite": 1 when the step met a NaN/Inf) and `mode`/`reason`
strings saying how it runs and, when eager on CUDA, why. `speed` is the SpeedConfig it runs
with (the config's, less what cannot apply here) and `notes` says what was left out and why.
All of them run the same steps.Step on a batches.BatchMaker's batch.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import torch

from ..base.device import fit_threads
from ..config import Config, SpeedConfig
from ..ensemble import stacked
from . import distributed, fast, kernels
from .batches import BatchMaker
from .distributed import Shard
from .members import expand, make_check
from .steps import HostCheck, Step

__all__ = ["EagerStep", "make_runner"]


class EagerStep:
    """steps.Step with a HostCheck: one finiteness check (a host sync) per optimizer step.

    With several processes (Shard.world > 1) the modules are DDP wrappers and each rank takes
    its slice of every batch (see batches.py and distributed.py for why).
    """

    mode = "eager"

    def __init__(self, cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                 noise: torch.Generator, device: torch.device, shard: Shard = Shard(),
                 augment_state=None, labels: torch.Tensor | None = None):
        self.cfg, self.speed, self.reason, self.notes = cfg, cfg.speed, "", []
        self.maker = BatchMaker(cfg, images, noise, device, shard, augment_state, labels)
        self.body = Step(cfg, generator, critic, g_opt, c_opt, make_check(cfg, HostCheck),
                         device.type, self.maker.augmenter)
        self.last_real: torch.Tensor | None = None  # the step's last real batch (health checks)
        self.last_labels: torch.Tensor | None = None  # and its labels (conditional runs)
        self.flags = {ok: torch.tensor(float(not ok), device=device) for ok in (True, False)}

    def step(self, order: torch.Tensor, first: int) -> dict[str, torch.Tensor]:
        """One generator step from batch `first` of `order`; returns the values to log."""
        batch = self.maker.make(self.maker.indices(order, first))
        with kernels.cudnn_benchmark(self.speed.cudnn_benchmark):
            terms, ok = self.body(batch)
        terms = expand(terms) if self.body.members > 1 else terms
        terms["nonfinite"] = self.flags[bool(ok.all())]
        self.last_real = batch.reals[-1]
        self.last_labels = None if batch.labels is None else batch.labels[-1]
        return terms


def applicable(cfg: Config, device: torch.device) -> tuple[SpeedConfig, list[str]]:
    """The config's speed settings that apply to this run, and a note for each one dropped."""
    # An ensemble's default way of running its members, decided for this device.
    speed, notes = replace(cfg.speed, ensemble_vmap=stacked(cfg, device)), []
    if speed.cudnn_benchmark and (device.type != "cuda" or cfg.run.deterministic):
        speed = replace(speed, cudnn_benchmark=False)
        if device.type == "cuda":  # timing-picked algorithms differ from run to run
            notes.append("cudnn-benchmark not used: --deterministic")
    if speed.channels_last and cfg.train.ensemble > 1:
        speed = replace(speed, channels_last=False)
        notes.append("channels-last not used: an ensemble's stacked weights are 5-D")
    return speed, notes


def make_runner(cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                noise: torch.Generator, device: torch.device, shard: Shard = Shard(),
                augment_state=None, labels: torch.Tensor | None = None):
    """The step the loop runs: one CUDA graph where possible, else eager (DDP when sharded).
    augment_state: the run's augmenting.AugmentState (with --augment); labels: the data's class
    labels (N,), beside the images, for conditional models.

    Call after any checkpoint is loaded: it sets the optimizers' capturable and fused flags
    (and, with channels_last, the weights' and optimizer state's memory layout).
    """
    if device.type == "cpu":
        fit_threads()
    speed, notes = applicable(cfg, device)
    for note in notes:
        print(f"wganlab: {note}", file=sys.stderr)
    cfg = replace(cfg, speed=speed)
    if speed.channels_last:
        kernels.to_channels_last(generator, critic)
    G = distributed.wrap(generator, device, shard)
    C = distributed.wrap(critic, device, shard)

    def eager():
        return EagerStep(cfg, G, C, g_opt, c_opt, images, noise, device, shard, augment_state,
                         labels)

    blockers = fast.graph_blockers(cfg, device, images, shard.world, speed.cuda_graph)
    for opt in (g_opt, c_opt):
        kernels.prepare_optimizer(opt, capturable=not blockers, fused=speed.fused_optimizer)
        kernels.match_state_layout(opt)
    if blockers:
        runner = eager()
        runner.reason = "; ".join(blockers)
    else:
        runner = fast.GraphStep(fast.StaticStep(cfg, generator, critic, g_opt, c_opt, images,
                                                noise, device, augment_state, labels), eager)
    runner.speed, runner.notes = speed, notes
    return runner
