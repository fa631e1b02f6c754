"""PyTorch side of the Keras oracle: weights in Keras's layout and the seed preset's step.

Keras stores a Dense kernel as (in, out), a Conv2D kernel as (kh, kw, in, out) and a
Conv2DTranspose kernel as (kh, kw, out, in), and images channels-last. The generator's dense
layer needs one more move: Keras reshapes its 6272 units to 7x7x128 (channel fastest),
PyTorch views them as 128x7x7, so unit (h, w, c) of one is unit (c, h, w) of the other; the
dense layer's columns and its BatchNorm's vectors are permuted to match.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wganlab.config import get_preset
from wganlab.models import build_models
from wganlab.training.optim import make_optimizer
from wganlab.training.steps import HostCheck, Step

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d)


def weighted(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, WEIGHTED)]


def _tensors(m: nn.Module) -> list[torch.Tensor]:
    """In Keras's slot order: kernel[, bias] or gamma, beta, moving mean, moving variance."""
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return [m.weight, m.bias, m.running_mean, m.running_var]
    return [m.weight] + ([m.bias] if m.bias is not None else [])


def cancelled_biases(net: nn.Module, prefix: str) -> set[str]:
    """Biases of layers followed by BatchNorm (the critic's convolutions): in training mode
    BatchNorm subtracts any constant, so their gradient is zero up to rounding."""
    mods = weighted(net)
    return {f"{prefix}.{i}.1" for i, (m, after) in enumerate(zip(mods, mods[1:]))
            if getattr(m, "bias", None) is not None
            and isinstance(after, (nn.BatchNorm1d, nn.BatchNorm2d))}


def dense_units(hidden: tuple[int, int, int]) -> np.ndarray:
    """perm with keras_units = torch_units[perm]: Keras's (h, w, c) order of PyTorch's units."""
    c, h, w = hidden
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def to_keras(m: nn.Module, slot: int, value: np.ndarray, perm: np.ndarray | None) -> np.ndarray:
    if isinstance(m, nn.Linear):
        return value.T[:, perm]
    if isinstance(m, nn.BatchNorm1d):
        return value[perm]
    if value.ndim == 4:  # both conv kinds: (a, b, kh, kw) -> (kh, kw, b, a)
        return value.transpose(2, 3, 1, 0)
    return value


def from_keras(m: nn.Module, slot: int, value: np.ndarray, perm: np.ndarray | None
               ) -> np.ndarray:
    if isinstance(m, nn.Linear):
        return value[:, np.argsort(perm)].T
    if isinstance(m, nn.BatchNorm1d):
        return value[np.argsort(perm)]
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    return value


def keras_weights(net: nn.Module, prefix: str, perm) -> dict[str, np.ndarray]:
    return {f"{prefix}.{i}.{j}": to_keras(m, j, t.detach().numpy(), perm)
            for i, m in enumerate(weighted(net)) for j, t in enumerate(_tensors(m))}


def torch_view(net: nn.Module, prefix: str, tag: str, arrays, perm) -> dict[str, np.ndarray]:
    """The Keras arrays `tag.prefix.i.j` found in `arrays`, converted to PyTorch's layout."""
    out = {}
    for i, m in enumerate(weighted(net)):
        for j in range(len(_tensors(m))):
            key = f"{tag}.{prefix}.{i}.{j}"
            if key in arrays:
                out[key] = from_keras(m, j, arrays[key], perm)
    return out


def ours(net: nn.Module, prefix: str, tag: str, grads: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for i, m in enumerate(weighted(net)):
        for j, t in enumerate(_tensors(m)):
            if grads and (not isinstance(t, nn.Parameter) or t.grad is None):
                continue
            value = t.grad if grads else t
            out[f"{tag}.{prefix}.{i}.{j}"] = value.detach().numpy().copy()
    return out


class GivenMasks(nn.Module):
    """nn.Dropout's place in the critic, with keep-masks from a queue (one per training call)."""

    def __init__(self, rate: float, masks: list[torch.Tensor]):
        super().__init__()
        self.rate, self.masks = rate, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x * self.masks.pop(0) / (1.0 - self.rate)


def give_masks(critic: nn.Module, masks: list[list[torch.Tensor]]) -> None:
    drops = [(name, m) for name, m in critic.features.named_children()
             if isinstance(m, nn.Dropout)]
    assert len(drops) == len(masks)
    for (name, m), queue in zip(drops, masks):
        critic.features._modules[name] = GivenMasks(m.p, queue)


def seed_config(**train_overrides):
    """The seed preset, optionally with some fields changed (the negative controls)."""
    cfg = get_preset("seed")
    model = train_overrides.pop("model", {})
    for key, value in model.items():
        setattr(cfg.model, key, value)
    for key, value in train_overrides.items():
        setattr(cfg.train, key, value)
    return cfg


def build(cfg, seed: int = 0):
    torch.manual_seed(seed)
    generator, critic = build_models(cfg.model, (1, 28, 28))
    return generator, critic


def run_steps(cfg, generator, critic, inputs: dict, masks, steps: int | None = None
              ) -> dict[str, np.ndarray]:
    """The seed step (training/steps.py's Step.shared_update) on the oracle's inputs: the forward
    outputs, then `steps` steps (default: one per input batch)."""
    give_masks(critic, masks)
    out = {}
    z = torch.from_numpy(inputs["z"])
    real = torch.from_numpy(inputs["real"]).permute(0, 1, 4, 2, 3).contiguous()
    with torch.no_grad():
        state = ({k: v.clone() for k, v in generator.state_dict().items()},
                 {k: v.clone() for k, v in critic.state_dict().items()})
        out["forward.g_train"] = generator.train()(z[0]).permute(0, 2, 3, 1).numpy()
        out["forward.g_infer"] = generator.eval()(z[0]).permute(0, 2, 3, 1).numpy()
        out["forward.c_train"] = critic.train()(real[0])[:, None].numpy()
        out["forward.c_infer"] = critic.eval()(real[0])[:, None].numpy()
        generator.load_state_dict(state[0])
        critic.load_state_dict(state[1])
    generator.train()
    critic.train()
    g_opt = make_optimizer(cfg, generator.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, critic.parameters(), cfg.train.c_lr)
    # The penalty's alphas: one draw per step from this generator (see alphas() below).
    rng = torch.Generator().manual_seed(7)
    losses = []
    step = Step(cfg, generator, critic, g_opt, c_opt, HostCheck("stop"))
    for k in range(len(z) if steps is None else steps):
        alpha = torch.rand(len(real[k]), generator=rng)
        terms, ok = step.shared_update(real[k], z[k], alpha)
        assert ok
        losses.append([float(terms[n]) for n in ("g_loss", "d_loss", "d_real", "d_fake", "gp")])
        if k == 0:
            out.update(ours(critic, "c", "grad", grads=True) | ours(generator, "g", "grad", True))
            out.update(ours(critic, "c", "step1") | ours(generator, "g", "step1"))
    if steps is None:
        out.update(ours(critic, "c", "final") | ours(generator, "g", "final"))
    rows = np.array(losses)
    rows[:, 2] *= -1  # the tutorial logs -E[D(x)] as "D-Real"
    out["losses"] = rows
    return out


def alphas(steps: int, batch: int) -> np.ndarray:
    rng = torch.Generator().manual_seed(7)
    return np.stack([torch.rand(batch, generator=rng).numpy() for _ in range(steps)])
