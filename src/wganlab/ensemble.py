"""N independent networks of one architecture as one module (--ensemble N).

Each member is built by models.build_generator / build_critic (the one place networks are
built), initialised from its own seed, and its weights are then stacked: the ensemble holds
one (N, ...) tensor per parameter and buffer, so one optimizer (Adam and RMSprop are
elementwise) and one EMA serve every member, and member k's weights are row k.

Inputs and outputs are member-major: a batch of N*b rows holds member 0's b samples, then
member 1's, and so on. The forward pass runs the members' own network (a meta-device copy of
member 0) with `torch.func.functional_call`, either once for all members under `torch.vmap`
(stacked: one batched kernel per layer; the convolutions become grouped ones) or once per
member (looped). Both are the same maths; looped is bit-for-bit member k's own network.

Dropout draws each member's masks from that member's own random generator, so member k's
masks are those its single run draws on the CPU (see `dropout_masks`).
"""

from __future__ import annotations

import copy
import dataclasses
import os

import torch
from torch import nn
from torch.func import functional_call

from .errors import ConfigError
from .models import Dropout, build_models

SEP = "/"  # a parameter's dotted name, as a registered name ("." is not allowed there)


def member_seeds(seed: int, members: int, seeds: tuple[int, ...] | None) -> list[int]:
    """Member k's seed: seeds[k] when given, else seed + k."""
    return list(seeds) if seeds else [seed + k for k in range(members)]


class Ensemble(nn.Module):
    """`members` networks of one architecture, stacked; forward(x (N*b, ...)) -> (N*b, ...).

    generators: one torch.Generator per member, for dropout masks (critics with dropout).
    """

    def __init__(self, members: list[nn.Module], generators: list | None = None,
                 stacked: bool = True):
        super().__init__()
        self.members, self.stacked = len(members), stacked
        self.generators = generators or []
        base = copy.deepcopy(members[0]).to("meta")
        object.__setattr__(self, "_base", base)  # not a submodule: holds no weights
        self._dropouts = {n: m.p for n, m in base.named_modules()
                          if isinstance(m, Dropout) and m.p > 0}
        self._names = []
        for name, _ in members[0].named_parameters():
            values = [dict(m.named_parameters())[name].detach() for m in members]
            self.register_parameter(name.replace(".", SEP), nn.Parameter(torch.stack(values)))
            self._names.append(name)
        for name, _ in members[0].named_buffers():
            values = [dict(m.named_buffers())[name] for m in members]
            self.register_buffer(name.replace(".", SEP), torch.stack(values))
            self._names.append(name)
        self._shapes: dict = {}
        for name in ("z_dim", "image_shape", "n_classes"):  # what samplers ask a network
            if hasattr(base, name):
                setattr(self, name, getattr(base, name))

    def train(self, mode: bool = True):
        """Training or inference mode for the members' own network too."""
        self._base.train(mode)
        return super().train(mode)

    def tensors(self) -> dict[str, torch.Tensor]:
        """{member network's name: stacked (N, ...) tensor}, parameters and buffers."""
        return {name: getattr(self, name.replace(".", SEP)) for name in self._names}

    def forward(self, x: torch.Tensor, *args, **kwargs):
        """The members' outputs on their shares of x, member-major like x."""
        n = self.members
        xs = x.unflatten(0, (n, -1))
        rest = [a.unflatten(0, (n, -1)) if isinstance(a, torch.Tensor) else a for a in args]
        tensors = self.tensors()
        if self.training and self._dropouts:
            tensors.update(self.dropout_masks(xs))

        def one(weights, x_k, *args_k):
            return functional_call(self._base, weights, (x_k, *args_k), kwargs)

        if self.stacked:
            out = torch.vmap(one, randomness="error")(tensors, xs, *rest)
        else:
            outs = [one({k: v[i] for k, v in tensors.items()}, xs[i],
                        *[a[i] if isinstance(a, torch.Tensor) else a for a in rest])
                    for i in range(n)]
            out = tuple(map(torch.stack, zip(*outs))) if isinstance(outs[0], tuple) else \
                torch.stack(outs)
        if isinstance(out, tuple):
            return tuple(o.flatten(0, 1) for o in out)
        return out.flatten(0, 1)

    def dropout_masks(self, xs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each dropout layer's (N, ...) masks for member-major inputs xs (N, b, ...).

        Member k draws from its own generator, layer by layer in the order of the forward
        pass, the way F.dropout draws on the CPU (bernoulli(1 - p), divided by 1 - p): with
        the generator in the state its single run's global stream has after initialising,
        the masks are that run's.
        """
        shapes = self._dropout_shapes(tuple(xs.shape[1:]))
        masks = {name: [] for name in self._dropouts}
        for g in self.generators:
            for name, p in self._dropouts.items():
                noise = torch.empty(shapes[name], device=xs.device)
                masks[name].append(noise.bernoulli_(1 - p, generator=g).div_(1 - p))
        return {f"{name}.mask": torch.stack(m) for name, m in masks.items()}

    def _dropout_shapes(self, shape: tuple) -> dict[str, tuple]:
        if shape not in self._shapes:
            seen, hooks = {}, []
            for name, module in self._base.named_modules():
                if name in self._dropouts:
                    hooks.append(module.register_forward_pre_hook(
                        lambda m, inp, name=name: seen.update({name: tuple(inp[0].shape)})))
            try:
                with torch.no_grad():
                    self._base(torch.empty(shape, device="meta"))
            finally:
                for hook in hooks:
                    hook.remove()
            self._shapes[shape] = seen
        return self._shapes[shape]


def stacked(cfg, device: torch.device) -> bool:
    """Whether an ensemble's members run as one batched network: --ensemble-vmap as given;
    by default on CUDA (one batched kernel fills the GPU), not on the CPU (measured: looped
    members cost N x one, stacked up to 1.45 N x; benchmarks/ensemble_speed.py) and not with
    spectral norm (its power iteration has no torch.vmap rule)."""
    if cfg.speed.ensemble_vmap is not None:
        return cfg.speed.ensemble_vmap
    return device.type == "cuda" and not cfg.model.spectral_norm


def member_state(state: dict, k: int, members: int) -> dict:
    """Member k's state dict (a plain network's) from an Ensemble's (or its EMA copy's)."""
    if not 0 <= k < members:
        raise ConfigError(f"--member: {k} is out of range; this run has {members} members "
                          f"(0 to {members - 1})")
    return {name.replace(SEP, "."): value[k] for name, value in state.items()
            if name != "n_averaged"}


def member_config(cfg, k: int):
    """Member k's config as its single run's: one model, seeded with member k's seed."""
    t = cfg.train
    seed = member_seeds(t.seed, t.ensemble, t.seeds)[k] if t.ensemble > 1 else t.seed
    return dataclasses.replace(cfg, train=dataclasses.replace(t, ensemble=1, seeds=None,
                                                              seed=seed))


def build_ensemble(cfg, image_shape: tuple[int, int, int], seeds: list[int],
                   device: torch.device, stacked: bool = True) -> tuple[Ensemble, Ensemble]:
    """The generator and critic ensembles of a model config, member k initialised as a
    single run seeded seeds[k] initialises (models.build_models after manual_seed)."""
    generators, critics, draws = [], [], []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator, critic = build_models(cfg, image_shape)
            after = torch.get_rng_state()  # what the single run's dropout draws from next
        generators.append(generator)
        critics.append(critic)
        draw = torch.Generator(device=device)
        if device.type == "cpu":
            draw.set_state(after)
        else:  # another kind of stream on the device: the same seed, not the same masks
            draw.manual_seed(seed + 3)
        draws.append(draw)
    return (Ensemble(generators, stacked=stacked).to(device),
            Ensemble(critics, draws, stacked=stacked).to(device))


# Bytes per float kept per member: weights, gradients, two Adam moments and the EMA copy.
STATE_COPIES = 5
# Activations kept per image, as multiples of one forward pass's outputs: the critic's passes
# on real, fake and interpolated images, and the penalty's double backward graph.
ACTIVATION_COPIES = 8


def estimated_bytes(cfg, image_shape: tuple[int, int, int], batch_size: int,
                    members: int) -> int:
    """A rough upper estimate of the memory an ensemble's step needs (bytes)."""
    generator, critic = (net.eval() for net in build_models_meta(cfg, image_shape))
    weights = sum(p.numel() for net in (generator, critic) for p in net.parameters())
    outputs = [0]

    def count(module, inputs, output):
        if isinstance(output, torch.Tensor) and not list(module.children()):
            outputs[0] += output[0].numel()  # per image

    hooks = [m.register_forward_hook(count) for net in (generator, critic)
             for m in net.modules()]
    z = torch.empty(1, generator.z_dim, device="meta")
    with torch.no_grad():
        if generator.n_classes:
            labels = torch.zeros(1, dtype=torch.long, device="meta")
            critic(generator(z, labels), labels)
        else:
            critic(generator(z))
    for hook in hooks:
        hook.remove()
    per_member = STATE_COPIES * weights + ACTIVATION_COPIES * outputs[0] * batch_size
    return 4 * members * per_member


def build_models_meta(cfg, image_shape):
    """Both networks on the meta device (no memory, no random draws)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build_models(cfg, image_shape)


def free_bytes(device: torch.device) -> int | None:
    """Memory free on the device (CUDA), or available to this process (CPU); None unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else None
        return pages * os.sysconf("SC_PAGE_SIZE") if pages else None


def check_memory(cfg, image_shape: tuple[int, int, int], device: torch.device) -> None:
    """ConfigError naming --ensemble when the members would not fit (estimated up front)."""
    t = cfg.train
    need = estimated_bytes(cfg.model, image_shape, t.batch_size, t.ensemble)
    free = free_bytes(device)
    if free is not None and need > free:
        raise ConfigError(f"--ensemble: {t.ensemble} members at batch {t.batch_size} need "
                          f"about {need / 2**30:.1f} GiB (estimated); {device.type} has "
                          f"{free / 2**30:.1f} GiB free: lower --ensemble or --batch-size")
