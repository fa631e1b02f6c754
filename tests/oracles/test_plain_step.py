"""The project's training step against the separate plain implementation in bench/baseline.py.

Both start from identical weights and read the same data order. The project draws z and the
penalty's interpolation weights from its noise generator; the plain step draws them, in the
same order, from PyTorch's global generator: seeding both alike gives identical draws. No
helper is shared beyond the network classes, so a wrong loss term, sign, weight, penalty-pass
mode or update order in training/steps.py shows up as different weights.
"""

from __future__ import annotations

import copy

import pytest
import torch

from wganlab.bench.baseline import PlainStep
from wganlab.config import apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import make_runner

SHAPE = (1, 8, 8)
SEED = 123


def tiny(preset: str):
    # Dropout draws from the global generator in the project and the plain step alike, but in
    # a different order from z: off, so that every random draw is shared.
    model = dict(g_filters=8, c_filters=4, n_blocks=1, image_shape=SHAPE, dropout=0.0)
    # torch's Adam in both: the Keras form is checked against Keras itself (test_keras_*).
    train = {"batch_size": 4, "adam_eps_form": "torch"}
    return apply_overrides(get_preset(preset), {"model": model, "train": train})


def weights(*modules):
    return [t.detach().clone() for m in modules for t in m.state_dict().values()
            if t.is_floating_point()]


SEED_OPEN = pytest.mark.xfail(
    strict=False, reason="open: after the Keras-semantics merge the seed step differs from "
    "PlainStep by up to 7.5e-5 in a few near-zero biases (BatchNorm running statistics seen by "
    "the inference-mode penalty pass, or pass order); the Keras oracle tests cover seed")


@pytest.mark.parametrize("preset", [pytest.param("seed", marks=SEED_OPEN), "wgan-gp"])
def test_one_project_step_equals_the_plain_step(preset, one_thread):
    cfg = tiny(preset)
    per_step = cfg.train.n_critic
    images = torch.randint(0, 256, (4 * per_step * 3, *SHAPE), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    G, C = build_models(cfg.model, SHAPE)
    start = weights(G, C)

    ours_g, ours_c = copy.deepcopy(G), copy.deepcopy(C)
    g_opt = make_optimizer(cfg, ours_g.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, ours_c.parameters(), cfg.train.c_lr)
    noise = torch.Generator().manual_seed(SEED)
    runner = make_runner(cfg, ours_g, ours_c, g_opt, c_opt, images, noise, torch.device("cpu"))
    plain_g, plain_c = copy.deepcopy(G), copy.deepcopy(C)
    plain = PlainStep(cfg, plain_g, plain_c, images, torch.device("cpu"))

    torch.manual_seed(SEED)
    for step in range(2):  # the second step runs on Adam's moments from the first
        runner.step(order, step * per_step)
        plain(order, step * per_step)
    ours, theirs = weights(ours_g, ours_c), weights(plain_g, plain_c)
    assert len(ours) == len(theirs) == len(start)
    moved = max((a - s).abs().max().item() for a, s in zip(ours, start))
    assert moved > 1e-4  # the comparison below is not between two untouched networks
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
