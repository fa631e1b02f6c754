"""Comparing an ensemble's member k with a single run: the equivalence contract's tolerances.

Stacked members (torch.vmap) run each layer as one batched kernel (a grouped convolution),
which sums in another order than the single network's kernel: float32 addition is not
associative, so member k differs from its single run in the last bits, and the difference is
carried from step to step. Hence, for stacked members:
- each element: |a - b| <= atol + 1e-4 |b|, with atol 5% of one Adam step (0.05 lr) for
  weights and 1e-3 of the tensor's largest element for Adam moments, BatchNorm statistics
  and EMA weights; all but SHARE (5%, at least 2) of a tensor's elements must pass. Adam
  steps by the gradient over the root of its running square, so the relative rounding error
  of a gradient becomes that of the step, and it is large where the gradient is a sum that
  nearly cancels (a BatchNorm's shift): such a step can even flip, by up to twice the
  learning rate. Every weight element is still held to 2 lr per step of the single run;
- a bias that feeds a BatchNorm (the critic's convolutions with --critic-norm batch) has a
  gradient that is zero in exact arithmetic: it is pure rounding noise, which Adam scales to
  steps of about the learning rate. Those are held to the 2 lr per step bound only, and
  their Adam moments are not compared.
Where the penalty's critic pass runs in inference mode (the seed preset's --gp-eval-mode),
that noise shifts the activations against BatchNorm's running mean, and so reaches every
gradient from the second step on: measured, every other tensor within 3e-7 of its norm
after one step, but 1e-5 typical and 1e-3 at worst after three. The seed preset's stacked
members are therefore compared after one step; looped, bit for bit after three.
Members run one after another (--no-ensemble-vmap) are bit-for-bit their single runs.
"""

from __future__ import annotations

import torch
from torch import nn

from wganlab.config import Config
from wganlab.ensemble import member_state
from wganlab.models import build_models

TYPICAL = 0.05  # the median difference, in Adam steps (weights) or of the largest element
WORST = 0.1  # the largest difference of a moment, statistic or EMA weight, likewise
STATS: list = []  # (name, typical, worst) of each comparison, for reading the margins


def noise_only(critic: nn.Module) -> set[str]:
    """Names of biases whose gradient is zero in exact arithmetic (right before BatchNorm)."""
    layers = list(critic.features)
    return {f"features.{i}.bias" for i, (a, b) in enumerate(zip(layers, layers[1:]))
            if isinstance(b, nn.BatchNorm2d) and getattr(a, "bias", None) is not None}


def _close(name: str, a: torch.Tensor, b: torch.Tensor, exact: bool,
           lr: float | None = None, steps: int = 0, noisy: bool = False):
    """lr: a weight trained by Adam at that rate for `steps` steps; else a moment, a
    statistic or an EMA weight."""
    if exact or not a.is_floating_point():
        assert torch.equal(a, b), f"{name} differs (max {(a - b).abs().max()})"
        return
    diff = (a - b).abs().flatten()
    if lr is not None:
        assert diff.max() <= 2 * lr * steps, f"{name}: an element moved {diff.max()} > 2 lr steps"
    if noisy:
        return
    scale = lr if lr is not None else max(float(b.abs().max()), 1e-12)
    typical, worst = diff.median() / scale, diff.max() / scale
    STATS.append((name, float(typical), float(worst)))
    assert typical <= TYPICAL, f"{name}: typical difference {typical:.1e} of {scale:.1e}"
    assert lr is not None or worst <= WORST, f"{name}: {worst:.1e} of its largest element"


def meta_networks(single: dict) -> tuple[nn.Module, nn.Module]:
    """A checkpoint's generator and critic, built on the meta device (names and layers)."""
    cfg = Config.from_dict(single["config"])
    with torch.device("meta"):
        return build_models(cfg.model, cfg.model.image_shape)


def assert_member_is_single(ens: dict, k: int, members: int, single: dict,
                            exact: bool = False) -> None:
    """Checkpoint dicts: ens's member k equals the single run's networks, optimizer moments
    and EMA (see the module's text for the tolerances)."""
    generator, critic = meta_networks(single)
    noisy = noise_only(critic)
    params = {net: {n for n, _ in m.named_parameters()}
              for net, m in (("generator", generator), ("critic", critic))}
    t = single["config"]["train"]
    assert ens["step"] == single["step"]
    for net in ("generator", "critic"):
        mine = member_state(ens[net], k, members)
        assert mine.keys() == single[net].keys()
        for name, value in single[net].items():
            lr = t["g_lr" if net == "generator" else "c_lr"] if name in params[net] else None
            _close(f"{net}.{name}", mine[name], value, exact, lr, single["step"],
                   net == "critic" and name in noisy)
    for opt, module in (("g_optimizer", generator), ("c_optimizer", critic)):
        names = [n for n, _ in module.named_parameters()]
        for i, state in single[opt]["state"].items():
            if names[i] in noisy and module is critic and not exact:
                continue
            for key, value in state.items():
                stacked = ens[opt]["state"][i][key]
                mine = stacked[k] if stacked.dim() > value.dim() else stacked
                _close(f"{opt}.{names[i]}.{key}", mine, value, exact)
    if "ema" in single:
        prefix = "module."
        mine = member_state({n[len(prefix):]: v for n, v in ens["ema"]["averaged"].items()
                             if n.startswith(prefix)}, k, members)
        for name, value in single["ema"]["averaged"].items():
            if name.startswith(prefix):
                _close(f"ema.{name}", mine[name[len(prefix):]], value, exact)


def same(a, b) -> bool:
    """Nested dicts, lists and tensors equal bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
