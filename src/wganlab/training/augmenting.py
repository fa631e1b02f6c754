"""Augmentation inside the run: its random streams, the probability p, and p's adaptation
(--augment-p auto). The maths is in wganlab/augment.py; here is where its random numbers and p
live.

- `AugmentState` exists whenever the run augments (TrainState.extras["augment"], so it is in
  every checkpoint and resume stays exact). It holds p as a 0-dim tensor on the device, which
  the graph reads at each replay: fixed for a number, adapted for auto (ADA's rule, Karras et
  al. 2020): every --augment-interval steps (ADA's 4) p moves by sign(overfit - target) *
  images / IMAGES_TO_ONE, clamped to [0, 1], all on the device (target: --augment-target).
  And it holds the augmentation's own random stream per member, seeded from the member's seed
  apart from the run's noise stream: the augmentation's draws never move z or the penalty's
  alphas, so an augmented run and the plain run of the same seed see the same z, and with
  p = 0 (auto's start) they are the same run, bit for bit. A comparison of the two then
  measures the augmentation, not a reshuffled random stream.
- `Augmenter` is what steps.Step passes every critic input through. It draws its uniforms
  from those streams on the run's device (in a CUDA graph they are registered, so replays
  advance them) for the *global* batch, keeping this rank's slice as batches.py does for z.
- `Overfitting` measures the heuristic: the critic's mean score on training images minus on
  held-out real images, over the training images' minus the generated images'
  (metrics/overfit.py). 0: held-out images look like training images to the critic; 1:
  they look as fake as generated ones. Cheaply: a critic pass in inference mode, without
  gradients, on 64 training, 64 held-out and the 64 fixed-z images, slices chosen by the step
  number (no random draws: the run's streams are untouched); every --augment-interval steps
  with auto, else only at logged steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..augment import augment, draws_needed, parse_policies
from ..config import Config, TrainConfig
from ..data import Dataset, load_dataset, to_float
from ..data.subset import concat_datasets, take_subset
from ..ensemble import member_seeds
from ..errors import ConfigError
from ..metrics import health
from ..metrics.overfit import critic_scores, overfit_ratio
from .distributed import Shard

# Images over which p may travel from 0 to 1 by default (--augment-speed): ADA's 500,000 suit
# days on a GPU; a few CPU minutes show 10,000-40,000 images, so p must be able to move within them.
IMAGES_TO_ONE = TrainConfig.augment_speed
# The augmentation's stream of a member seeded s is seeded STREAM_SEED + s: apart from every
# seed a run's other streams take (s + 1, s + 2, with s <= validation.MAX_SEED = 2 ** 62).
STREAM_SEED = 2 ** 63
SCORED = 64  # images of each kind the heuristic scores


class AugmentState:
    """p on the device, fixed or adapted (auto) from the overfitting heuristic, and the
    augmentation's random streams: one per member of an ensemble (p (N,) then, each adapted
    from its own member's heuristic, each member drawing from its own stream)."""

    def __init__(self, value: float | str, device: torch.device, seeds: Sequence[int] = (1,),
                 target: float = TrainConfig.augment_target, images_to_one: int = IMAGES_TO_ONE):
        self.auto, self.target, self.images_to_one = value == "auto", target, images_to_one
        start = 0.0 if self.auto else float(value)
        shape = (len(seeds),) if len(seeds) > 1 else ()
        self.p = torch.full(shape, start, device=device)
        self.overfit = torch.zeros(shape, device=device)  # the last heuristic (auto)
        self.streams = [torch.Generator(device=device).manual_seed(STREAM_SEED + s)
                        for s in seeds]

    @torch.no_grad()
    def adjust(self, overfit: torch.Tensor, images: int) -> None:
        """p += sign(overfit - target) * images / images_to_one, clamped (device work only)."""
        self.overfit.copy_(overfit)
        step = images / self.images_to_one
        self.p.add_(torch.sign(overfit - self.target) * step).clamp_(0.0, 1.0)

    @classmethod
    def from_config(cls, cfg: Config, device: torch.device) -> AugmentState:
        """The run's augmentation state, built in one place for the run, the runner and the
        benchmark."""
        t = cfg.train
        return cls(t.augment_p, device, member_seeds(t.seed, t.ensemble, t.seeds),
                   t.augment_target, t.augment_speed)

    def state_dict(self) -> dict:
        """p, the last heuristic and each stream's state, as tensors."""
        return {"p": self.p.detach().cpu(), "overfit": self.overfit.detach().cpu(),
                "streams": [g.get_state() for g in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        """In place: a captured graph keeps reading the same tensors and streams. (A
        checkpoint written before the streams were saved has none: they start afresh.)"""
        self.p.copy_(state["p"])
        self.overfit.copy_(state["overfit"])
        for g, saved in zip(self.streams, state.get("streams", [])):
            g.set_state(saved.cpu())


class Augmenter:
    """x -> augment(x, draws, p): the policies with fresh draws from the augmentation's
    stream, or, for an ensemble's member-major x, each member's share with draws from its own
    stream (and its own p), so member k augments exactly as its single run does."""

    def __init__(self, policies: tuple[str, ...], p: torch.Tensor,
                 streams: list[torch.Generator], device: torch.device, shard: Shard = Shard()):
        self.policies, self.p, self.streams, self.device = policies, p, streams, device
        self.shard, self.draws = shard, draws_needed(policies)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (b, C, H, W) augmented; draws for the global batch, this rank's slice used."""
        b = len(x) // len(self.streams)  # each member's share
        u = torch.cat([self.shard.take(torch.rand(b * self.shard.world, self.draws,
                                                  generator=g, device=g.device))
                       for g in self.streams])
        p = self.p if self.p.dim() == 0 else self.p.repeat_interleave(b)
        return augment(x, u.to(self.device), p, self.policies)


def make_augmenter(cfg: Config, state: AugmentState | None, device: torch.device,
                   shard: Shard = Shard()) -> Augmenter | None:
    """The run's Augmenter, or None without --augment; state: the run's AugmentState."""
    policies = parse_policies(cfg.train.augment)
    if not policies:
        return None
    if state is None:  # a runner built without the run's state (tests, the benchmark)
        state = AugmentState.from_config(cfg, device)
    return Augmenter(policies, state.p, state.streams, device, shard)


class Overfitting:
    """The overfitting heuristic from held-out real images (see the module's docstring); for
    an ensemble (N,), each member's from its own training and held-out images.

    images: the run's training images; with `block`, member k's are rows [k * block,
    (k + 1) * block) (each member's own --max-images subset). heldouts: each member's.
    labels: the training images' classes, for a class-conditional critic (None: it scores
    images alone); the held-out images are then scored with their own classes and the
    fixed-z images with the classes they were generated for."""

    def __init__(self, images: torch.Tensor, heldouts: list[Dataset], every: int | None,
                 device: torch.device, block: int | None = None,
                 labels: torch.Tensor | None = None):
        self.every, self.device, self.block = every, device, block
        self.train = (images, labels)
        self.heldouts = [(h.images.to(device), None if labels is None else h.labels.to(device))
                         for h in heldouts]

    def due(self, step: int) -> bool:
        """Whether p adapts after this step (every --augment-interval steps with auto)."""
        return self.every is not None and step % self.every == 0

    def _slice(self, kind: tuple[torch.Tensor, torch.Tensor | None], step: int
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = kind
        n = min(SCORED, len(images))
        start = (step * n) % (len(images) - n + 1)
        return (to_float(images[start:start + n].to(self.device)),
                None if labels is None else labels[start:start + n].to(self.device))

    def _trained_on(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.block is None:
            return self.train
        rows = slice(k * self.block, (k + 1) * self.block)
        return tuple(None if x is None else x[rows] for x in self.train)

    def measure(self, state, step: int, fake: torch.Tensor | None = None) -> torch.Tensor:
        """The heuristic now, as a 0-dim device tensor, (N,) for an ensemble (no host sync).
        fake: the fixed-z images as trained, when the caller has them already."""
        members = len(self.heldouts)
        scores = []
        for kind in ([self._trained_on(k) for k in range(members)], self.heldouts):
            images, labels = zip(*(self._slice(each, step) for each in kind))
            labels = None if labels[0] is None else torch.cat(labels)
            scores.append(critic_scores(state.critic, torch.cat(images), labels).chunk(members))
        fixed_labels = state.fixed_labels if self.train[1] is not None else None
        if fake is None:
            fake = health.generate_as_trained(state.generator, state.fixed_z, fixed_labels)
        scores.append(critic_scores(state.critic, fake, fixed_labels).chunk(members))
        ratios = [overfit_ratio(*each) for each in zip(*scores)]
        return ratios[0] if members == 1 else torch.stack(ratios)


def select_images(cfg: Config, data: Dataset
                  ) -> tuple[Dataset, list[Dataset] | None, int | None]:
    """The images the run trains on, each member's held-out real images, and the
    size of each member's block of training images (None: every member trains on them all).

    --max-images takes a subset per member seed (member k's is its single run's); an ensemble
    trains on the subsets one after another (block = --max-images) and holds out the rest of
    the split per member. Without --max-images, auto holds out the test split (else None: no
    overfitting heuristic)."""
    r, t = cfg.run, cfg.train
    heldouts = None
    block = None
    if r.max_images is not None:
        seeds = member_seeds(t.seed, t.ensemble, t.seeds)  # [seed] for one model
        try:
            subsets, heldouts = zip(*(take_subset(data, r.max_images, s) for s in seeds))
        except ValueError as e:
            raise ConfigError(f"--max-images: {e}") from None
        data, heldouts = subsets[0], list(heldouts)
        if len(subsets) > 1:
            data, block = concat_datasets(subsets), r.max_images
    if (heldouts is None or len(heldouts[0]) == 0) and t.augment_p == "auto":
        folder = r.dataset.startswith("folder:")
        if r.dataset == "user" or (folder and not (Path(r.dataset[7:]) / "test").is_dir()):
            raise ConfigError("--augment-p: auto needs held-out real images: give "
                              "--max-images below the data set's size (the rest is held out) "
                              "or a data set with a test split")
        test = load_dataset(r.dataset, "test", r.data_dir, cfg.model.image_shape,
                            r.on_bad_image)
        if cfg.model.conditional != "none":
            _check_test_classes(test, data)
        heldouts = [test] * t.ensemble
    return data, heldouts if heldouts is not None and len(heldouts[0]) else None, block


def _check_test_classes(test: Dataset, train: Dataset) -> None:
    """A conditional critic scores held-out test images with their classes: they need labels,
    and the classes of the training images (a folder's test/ may have other subfolders)."""
    where = "--augment-p auto with --conditional: the test split, held out for the overfitting " \
            "heuristic,"
    if test.labels is None:
        raise ConfigError(f"{where} has no labels: put its images in the class subfolders "
                          "that train/ has")
    if test.class_names != train.class_names:
        raise ConfigError(f"{where} has other classes ({', '.join(test.class_names or ())}) "
                          f"than the training images ({', '.join(train.class_names or ())})")
