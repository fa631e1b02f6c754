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
    return {f"{i}.{name}": t.detach().clone() for i, m in enumerate(modules)
            for name, t in m.state_dict().items() if t.is_floating_point()}


def biases_before_batchnorm(*modules) -> set[str]:
    """Biases of layers whose output goes straight into BatchNorm.

    BatchNorm in training mode subtracts the batch mean, so such a bias's true gradient is
    exactly zero; what is computed is float rounding (~1e-7), and Adam, which divides by the
    gradient's own scale, turns that noise into steps of about the learning rate whose sign
    depends on the order of float additions. Two correct implementations differ there.
    """
    names = set()
    for i, m in enumerate(modules):
        for parent_name, parent in m.named_modules():
            children = list(parent.named_children())
            for (name, layer), (_, after) in zip(children, children[1:]):
                if isinstance(after, torch.nn.modules.batchnorm._BatchNorm) and \
                        getattr(layer, "bias", None) is not None:
                    names.add(f"{i}.{parent_name + '.' if parent_name else ''}{name}.bias")
    return names


@pytest.mark.parametrize("preset", ["seed", "wgan-gp"])
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
    assert ours.keys() == theirs.keys() == start.keys()
    moved = max((ours[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-4  # the comparison below is not between two untouched networks
    noise_only = biases_before_batchnorm(G, C)
    assert bool(noise_only) == (cfg.model.critic_norm == "batch")
    for name in ours:
        if name in noise_only:  # bounded by Adam's largest step (lr (1-b1)/sqrt(1-b2)) x 2
            lr = cfg.train.c_lr if name.startswith("1.") else cfg.train.g_lr
            assert (ours[name] - theirs[name]).abs().max() <= 2 * 2 * 3.2 * lr, name
        else:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6,
                                       msg=lambda m, n=name: f"{n}: {m}")
