"""Everything a run trains and draws from, and how it becomes a checkpoint and comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..augment import parse_policies
from ..base import checkpoint
from ..config import Config
from ..data import sample_z
from ..ensemble import build_ensemble, member_seeds, stacked
from ..errors import CheckpointError, ConfigError, NonFiniteError
from ..models import build_models
from ..version import __version__
from .augmenting import AugmentState
from .ema import GeneratorEMA
from .optim import make_optimizer

N_FIXED = 64  # fixed-z samples drawn every epoch
GRID_COLUMNS = 8  # a conditional run's grid: the first 8 fixed z, one row per class
GRID_CLASSES = 20  # at most this many class rows (a folder may have hundreds of classes)


@dataclass
class TrainState:
    """The networks, their optimizers, the random streams and the counters of one run."""

    generator: torch.nn.Module
    critic: torch.nn.Module
    g_opt: torch.optim.Optimizer
    c_opt: torch.optim.Optimizer
    noise: torch.Generator | list  # z, penalty alphas: the stream(s) a resume must continue
    fixed_z: torch.Tensor  # the z of the per-epoch sample grid
    step: int = 0  # generator steps done
    skipped: int = 0  # steps skipped for non-finite values (--on-nan skip)
    elapsed: float = 0.0  # training seconds before this process started (resume)
    extras: dict = field(default_factory=dict)  # name -> object with state_dict/load_state_dict

    @classmethod
    def build(cls, cfg: Config, device: torch.device) -> TrainState:
        """Fresh networks, optimizers and seeded streams for `cfg` on `device`."""
        t = cfg.train
        if t.ensemble > 1:  # N members, member k as a single run seeded seeds[k] (one stream each)
            seeds = member_seeds(t.seed, t.ensemble, t.seeds)
            generator, critic = build_ensemble(cfg.model, cfg.model.image_shape, seeds, device,
                                               stacked(cfg, device))
        else:
            seeds = [t.seed]
            generator, critic = build_models(cfg.model, cfg.model.image_shape)
            generator, critic = generator.to(device), critic.to(device)
        noises = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]
        noise = noises if t.ensemble > 1 else noises[0]
        fixed_z = torch.cat([sample_z(
            N_FIXED, cfg.model.z_dim, t.z_dist, device=device,
            generator=torch.Generator(device=device).manual_seed(s + 2)) for s in seeds])
        state = cls(generator, critic, make_optimizer(cfg, generator.parameters(), t.g_lr),
                    make_optimizer(cfg, critic.parameters(), t.c_lr), noise, fixed_z)
        if t.ema_decay > 0:  # the averaged generator, saved as the checkpoint's "ema" entry
            state.extras["ema"] = GeneratorEMA(generator, t.ema_decay)
        if parse_policies(t.augment):  # p, its heuristic and the augmentation's streams
            state.extras["augment"] = AugmentState.from_config(cfg, device)
        return state

    @property
    def fixed_labels(self) -> torch.Tensor | None:
        """Classes for the fixed z in turn (0, 1, ..., K-1, 0, ...), from 0 again for each
        member of an ensemble; None when unconditional. Derived, not saved: the same on every
        resume."""
        k = getattr(self.generator, "n_classes", 0)
        if not k:
            return None
        return torch.arange(len(self.fixed_z), device=self.fixed_z.device) % N_FIXED % k

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples and evaluations use: the EMA copy when there is one."""
        ema = self.extras.get("ema")
        return ema.module if ema is not None else self.generator

    def after_step(self) -> None:
        """Fold the step's generator weights into the EMA (device work only, no sync)."""
        ema = self.extras.get("ema")
        if ema is not None:
            ema.update()

    def to_checkpoint(self, cfg: Config, per_epoch: int, elapsed: float) -> dict:
        """A plain dict of tensors and values (loadable with weights_only=True)."""
        for net, name in ((self.generator, "generator"), (self.critic, "critic")):
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                raise NonFiniteError(f"step {self.step}: {name} weights are not finite; "
                                     "no checkpoint written")
        return {"generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
                "g_optimizer": self.g_opt.state_dict(), "c_optimizer": self.c_opt.state_dict(),
                "step": self.step, "epoch": self.step // per_epoch, "skipped": self.skipped,
                "rng": checkpoint.rng_state(self.streams[0]), "fixed_z": self.fixed_z.cpu(),
                "elapsed": elapsed, "config": cfg.to_dict(), "version": __version__,
                **{name: obj.state_dict() for name, obj in self.extras.items()},
                **self._member_streams()}

    @property
    def streams(self) -> list[torch.Generator]:
        """The noise stream of each member (one for a single model)."""
        return self.noise if isinstance(self.noise, list) else [self.noise]

    def _member_streams(self) -> dict:
        if not isinstance(self.noise, list):
            return {}
        return {"member_noise": [g.get_state() for g in self.noise],
                "member_dropout": [g.get_state() for g in self.critic.generators]}

    def restore(self, state: dict, path: Path | str, device: torch.device) -> None:
        """Load a checkpoint's full state; a checkpoint of other networks is named, not
        half-loaded."""
        members = state.get("config", {}).get("train", {}).get("ensemble", 1)
        if members != len(self.streams):
            raise ConfigError(f"--ensemble: {path} holds {members} member(s); this run has "
                              f"{len(self.streams)}. Resume with --ensemble {members}")
        try:
            self.generator.load_state_dict(state["generator"])
            self.critic.load_state_dict(state["critic"])
            self.g_opt.load_state_dict(state["g_optimizer"])
            self.c_opt.load_state_dict(state["c_optimizer"])
            for name, obj in self.extras.items():
                if name in state:
                    obj.load_state_dict(state[name])
            checkpoint.set_rng_state(state["rng"], self.streams[0])
            for g, saved in zip(self.streams[1:], state.get("member_noise", [])[1:]):
                g.set_state(saved.cpu())
            for g, saved in zip(getattr(self.critic, "generators", []),
                                state.get("member_dropout", [])):
                g.set_state(saved.cpu())
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: does not fit this run's config "
                                  f"({str(e).strip().splitlines()[0][:200]})") from e
        self.fixed_z = state["fixed_z"].to(device)
        self.step, self.skipped = state["step"], state["skipped"]
        self.elapsed = state.get("elapsed", 0.0)
