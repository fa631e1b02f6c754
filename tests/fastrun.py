"""Shared set-up for the fast-path tests: tiny networks and a fresh copy per way of stepping."""

import copy

import torch

from wganlab.config import apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training import fast
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import EagerStep
from wganlab.training.schedule import epoch_order

CPU = torch.device("cpu")


def setup(preset, on_nan="stop", **model):
    cfg = apply_overrides(get_preset(preset), {
        "model": dict(g_filters=8, c_filters=4, **model),
        "train": dict(batch_size=6), "run": dict(on_nan=on_nan)})
    torch.manual_seed(0)
    generator, critic = build_models(cfg.model, (1, 28, 28))
    images = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    return cfg, generator, critic, images


class Run:
    """A fresh copy of the networks, optimizers and random streams, for one way of stepping."""

    def __init__(self, cfg, generator, critic, images):
        self.cfg, self.images = cfg, images
        self.G, self.C = copy.deepcopy(generator), copy.deepcopy(critic)
        self.g_opt = make_optimizer(cfg, self.G.parameters(), 1e-3)
        self.c_opt = make_optimizer(cfg, self.C.parameters(), 1e-3)
        self.noise = torch.Generator().manual_seed(5)
        self.order = epoch_order(len(images), 1, 0, CPU)
        self.per_step = 1 if cfg.train.shared_step else cfg.train.n_critic

    def args(self):
        return (self.cfg, self.G, self.C, self.g_opt, self.c_opt, self.images, self.noise, CPU)

    def with_speed(self, **speed):
        """This run's config with speed settings changed (bf16=True, ...)."""
        return apply_overrides(self.cfg, {"speed": speed})

    def static(self, **speed):
        return fast.StaticStep(self.with_speed(**speed), *self.args()[1:])

    def eager(self, **speed):
        return EagerStep(self.with_speed(**speed), *self.args()[1:])

    def run_static(self, step, i):
        step.load(self.order, i * self.per_step)
        values = step()
        return dict(zip(step.keys, values))

    def params(self):
        return [p.detach().clone() for p in [*self.G.parameters(), *self.C.parameters()]]


def assert_static_equals_eager(eager: Run, static: Run, steps: int = 3, **speed):
    """The static (graph) step and the eager step from identical copies: every logged value,
    every weight and the noise stream equal, bit for bit, over `steps` steps. Both call the
    same steps.Step, so this checks what differs between them (gather, draws, checks), not
    the step's maths. Returns (eager runner, static step, the eager rows)."""
    runner = eager.eager(**speed)
    torch.manual_seed(7)  # dropout draws from the global stream: the same draws for both
    wants = [runner.step(eager.order, i * eager.per_step) for i in range(steps)]
    step = static.static(**speed)
    torch.manual_seed(7)
    for i, want in enumerate(wants):
        got = static.run_static(step, i)
        assert set(got) == set(want)
        for key in want:
            assert torch.equal(got[key], want[key].float()), (i, key)
    for a, b in zip(eager.params(), static.params()):
        assert torch.equal(a, b)
    assert torch.equal(eager.noise.get_state(), static.noise.get_state())
    if runner.maker.augmenter is not None:  # the augmentation's stream(s) too, registered
        for a, b in zip(runner.maker.augmenter.streams, step.maker.augmenter.streams):
            assert torch.equal(a.get_state(), b.get_state())
            assert any(g is b for g in step.generators)
    return runner, step, wants
