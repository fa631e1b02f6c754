"""Configuration: three dataclasses (model, training, data/run) and the named presets.

Every field carries a one-line help text; the CLI derives its flags from these fields,
so a new field is a new flag with nothing else to write.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


def opt(default: Any, help: str, choices: tuple | None = None, aliases: tuple = ()) -> Any:
    """A dataclass field with its help text, allowed values and the older names that the
    flag and config files also take (see upgrade) for the CLI."""
    meta = {"help": help, "choices": choices, "aliases": aliases}
    if isinstance(default, (list, tuple, dict)):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    """The two networks: latent size, image shape, widths, depth, normalisation, init."""

    z_dim: int = opt(20, "size of the latent vector z")
    image_shape: tuple[int, int, int] | None = opt(
        None, "image shape C,H,W; default: the data set's own (1,28,28 for MNIST)")
    g_filters: int = opt(128, "generator channels after the dense layer")
    c_filters: int = opt(64, "critic channels of the first convolution")
    n_blocks: int = opt(2, "stride-2 blocks in each network; H and W must divide by 2**n_blocks")
    critic_norm: str = opt("batch", "normalisation in the critic",
                           ("batch", "layer", "instance", "none"))
    dropout: float = opt(0.3, "dropout after each stride-2 critic block (0 disables)")
    slope: float = opt(0.3, "LeakyReLU negative slope (Keras default 0.3)")
    bn_momentum: float = opt(0.01, "BatchNorm momentum, PyTorch convention (Keras 0.99 = 0.01)")
    bn_eps: float = opt(1e-3, "BatchNorm epsilon (Keras default 1e-3)")
    spectral_norm: bool = opt(False, "spectral normalisation on every critic layer")
    minibatch_discrimination: bool = opt(False, "minibatch-discrimination layer in the critic")
    weight_init: str = opt("glorot", "weight initialisation", ("glorot", "dcgan", "pytorch"))
    padding: str = opt("torch", "stride-2 'same' padding: torch (2 px each side) or keras "
                       "(1 before, 2 after, as the tutorial)", ("torch", "keras"))
    conditional: str = opt(
        "none", "class-conditional model: a projection critic (Miyato & Koyama 2018) or an "
        "auxiliary classifier (AC-GAN, Odena et al. 2017); the generator takes the class "
        "through conditional BatchNorm; needs labelled data", ("none", "projection", "acgan"))
    class_names: tuple[str, ...] | None = opt(
        None, "names of the classes, comma-separated (label k is the k-th); default: the "
        "data set's own (a conditional run stores them)")


@dataclass
class TrainConfig:
    """The recipe: loss, step structure, optimizers, run length, penalty, z, seed."""

    loss: str = opt("wasserstein", "adversarial loss (see losses.LOSSES); the names of earlier "
                    "versions are read too: wgan-gp, wgan, gan-ns, gan-minimax",
                    ("wasserstein", "hinge", "non-saturating", "minimax"),
                    aliases=("wgan-gp", "wgan", "gan-ns", "gan-minimax"))
    penalty: str = opt("gp", "critic regulariser (see losses.PENALTIES): gradient penalty at "
                       "real-fake interpolates, R1 on real images, or none", ("gp", "r1", "none"))
    shared_step: bool = opt(
        False, "tutorial step: one generator forward feeds both updates in one step")
    gp_eval_mode: bool = opt(
        False, "run the penalty's critic pass in inference mode (as the tutorial's Keras did)")
    n_critic: int = opt(5, "critic updates per generator update")
    batch_size: int = opt(128, "images per batch (the last partial batch is dropped)")
    epochs: int | None = opt(None, "total epochs for the run (with --resume: the planned total)")
    steps: int | None = opt(None, "total generator steps for the run")
    minutes: float | None = opt(None, "stop after this much wall time in this process")
    optimizer: str = opt("adam", "optimizer for both networks", ("adam", "rmsprop"))
    g_lr: float = opt(1e-4, "generator learning rate")
    c_lr: float = opt(1e-4, "critic learning rate")
    betas: tuple[float, float] = opt((0.0, 0.9), "Adam betas for both networks")
    adam_eps: float = opt(1e-8, "Adam epsilon (PyTorch's default 1e-8; Keras's 1e-7)")
    adam_eps_form: str = opt(
        "torch", "Adam epsilon added to sqrt of the bias-corrected (torch) or of the raw (keras) "
        "second moment", ("torch", "keras"))
    shuffle_buffer: int | None = opt(
        None, "data order: a buffer shuffle of N images like tf.data's shuffle(N); "
              "default: a full permutation")
    gp_weight: float = opt(10.0, "penalty weight: lambda of the gradient penalty, gamma of R1")
    clip: float | None = opt(None, "clip critic weights to [-clip, clip] (original WGAN)")
    z_dist: str = opt("normal", "distribution of z", ("uniform", "normal"))
    feature_matching: bool = opt(False, "generator matches mean critic features of real data")
    acgan_weight: float = opt(
        1.0, "with --conditional acgan: weight of the classifier's cross-entropy, on real "
        "images in the critic's loss and on generated ones in the generator's")
    ema_decay: float = opt(
        0.0, "decay of an exponential moving average of the generator's weights, used for "
        "samples and evaluation (0: none)")
    augment: str = opt(
        "none", "differentiable augmentation of every image the critic sees, real and "
        "generated: comma-separated policies from translation, cutout, colour (brightness and "
        "contrast; saturation too for RGB), or none")
    augment_p: float | str = opt(
        0.3, "probability that each augmentation acts on an image (0.3: measured best on 500 "
        "images; DiffAugment's 1 was far worse at CPU budgets), or auto: adapted while "
        "training from how far the critic's scores of held-out real images fall behind")
    augment_target: float = opt(
        0.3, "with --augment-p auto: the overfitting heuristic (in [-1, 1]) that p is adapted "
        "to hold; p rises while the heuristic is above it (ADA's target; higher: augment later)")
    augment_speed: int = opt(
        10_000, "with --augment-p auto: images shown over which p can travel from 0 to 1 "
        "(10,000 lets p act within a few CPU minutes; ADA's 500,000 suits long runs, where "
        "a fast p swings with the heuristic's noise)")
    augment_interval: int = opt(
        4, "with --augment-p auto: steps between readings of the overfitting heuristic, each "
        "followed by an adjustment of p (ADA's 4); a reading (a critic pass on 192 images) "
        "costs about a third of a `fast` step on the CPU, so 4 makes a step about 9 percent "
        "dearer and 16 about 2; a larger interval moves p in larger steps")
    xflip: bool = opt(
        False, "mirror real images left-right at random (data-set augmentation); wrong for "
        "digits and letters (MNIST), and with --preset seed it breaks the tutorial's recipe")
    seed: int = opt(1, "random seed for weights, data order and z")
    ensemble: int = opt(
        1, "train N independent models (members) in one step, member k seeded seed + k; "
        "each member equals its own single run")
    seeds: tuple[int, ...] | None = opt(
        None, "the members' seeds, one per member (instead of seed, seed + 1, ...)")


@dataclass
class RunConfig:
    """Everything around the recipe: data, output folder, device, logging, evaluation."""

    dataset: str = opt("fashion-mnist", "mnist | fashion-mnist | cifar10 | synthetic | folder:PATH")
    data_dir: str | None = opt(None, "folder with the data set's files (searched first)")
    max_images: int | None = opt(
        None, "train on a class-balanced subset of N images drawn by --seed (the rest of the "
        "training split is the held-out set); evaluation still uses the whole test split")
    out: str = opt("runs/latest", "run directory")
    device: str = opt("auto", "auto picks cuda, then mps, then cpu")
    log_every: int = opt(10, "write metrics.jsonl every N generator steps")
    keep_last: int = opt(3, "checkpoints to keep")
    checkpoint_every: int | None = opt(None, "also save every N steps (default: each epoch)")
    keep_every: int | None = opt(
        None, "also save every N steps and keep those checkpoints, besides the newest "
        "--keep-last (to evaluate a quality curve later)")
    eval_every: int | None = opt(None, "evaluate FID/KID/coverage every N steps")
    eval_n: int = opt(5000, "samples per evaluation during training")
    on_nan: str = opt("stop", "what a non-finite loss or gradient does", ("stop", "skip"))
    on_bad_image: str = opt("error", "bad files in an image folder", ("error", "skip"))
    deterministic: bool = opt(False, "use PyTorch's deterministic algorithms")
    tensorboard: bool = opt(False, "also log to TensorBoard (needs the tensorboard extra)")
    progress: bool = opt(True, "show a tqdm progress bar")
    sample_scaling: str = opt(
        "fixed", "samples-by-epoch figure: one grey scale for all (fixed) or each image "
                 "stretched to its own range (per-image, as the tutorial's imshow)",
        ("fixed", "per-image"))


@dataclass
class SpeedConfig:
    """How the step runs; none of it changes what is computed, except bf16's rounding.

    May differ when a run is resumed. Measured on one H200 (torch 2.11, batch 128, `wganlab
    bench`, speed-up over a plain eager step): default 1.81x (seed) / 1.97x (wgan-gp);
    channels-last 1.99x / 1.81x; bf16 1.98x / 2.03x. Neither pays for both recipes, so both
    stay off by default.
    """

    cuda_graph: bool = opt(True, "capture the whole step as one CUDA graph where possible")
    fused_optimizer: bool = opt(True, "fused Adam / foreach RMSprop kernels")
    cudnn_benchmark: bool = opt(True, "let cuDNN time its algorithms once per shape (CUDA)")
    channels_last: bool = opt(
        False, "NHWC weights and batches (H200: 1.99x vs 1.81x for seed, 1.81x vs 1.97x for "
               "wgan-gp)")
    bf16: bool = opt(False, "bf16 autocast of the forward passes and losses; backward passes "
                            "and the penalty's gradient norm stay fp32 (H200: about equal)")
    ensemble_vmap: bool | None = opt(
        None, "run an ensemble's members as one batched network (torch.vmap: grouped "
              "kernels), or with --no-ensemble-vmap one after another (same maths); default: "
              "batched on CUDA, one after another on the CPU (measured faster there) and "
              "with spectral norm")


@dataclass
class Config:
    """A whole run: the preset it started from and its sections."""

    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def to_dict(self) -> dict:
        """Plain nested dicts (tuples stay tuples), as config.json holds them."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Indented JSON with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """The Config of a dict like to_dict's (or an earlier version's: see upgrade);
        ConfigError names any unknown field."""
        def build(kind, values):
            names = {f.name: f for f in dataclasses.fields(kind)}
            unknown = set(values) - set(names)
            if unknown:
                raise ConfigError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
            out = {}
            for k, v in values.items():
                out[k] = tuple(v) if isinstance(v, list) else v
            return kind(**out)

        d = upgrade(d)
        return cls(preset=d.get("preset", "custom"),
                   **{name: build(kind, d.get(name, {})) for name, kind in SECTIONS.items()})


SECTIONS = {"model": ModelConfig, "train": TrainConfig, "run": RunConfig, "speed": SpeedConfig}

# Loss names of wganlab 0.x, each the loss and penalty it meant (config files, config.json and
# checkpoints of earlier runs, and the --loss flag, keep working).
LEGACY_LOSSES = {"wgan-gp": ("wasserstein", "gp"), "wgan": ("wasserstein", "none"),
                 "gan-ns": ("non-saturating", "none"), "gan-minimax": ("minimax", "none")}


def upgrade(d: dict, whole: bool = True) -> dict:
    """A config dict in this version's terms: a legacy loss name becomes the loss and penalty
    it meant (a given penalty wins). A whole config from before the penalty field (whole=True)
    had a penalty only with wgan-gp; in {section: values} overrides only legacy names change."""
    train = d.get("train")
    if not isinstance(train, dict):
        return d
    loss = train.get("loss")
    if loss in LEGACY_LOSSES:
        loss, penalty = LEGACY_LOSSES[loss]
    elif whole and "loss" in train and "penalty" not in train:
        penalty = "none"  # a config written before penalties had a field: hinge alone
    else:
        return d
    return {**d, "train": {"penalty": penalty, **train, "loss": loss}}


def _preset(name: str, model: dict, train: dict, run: dict | None = None) -> Config:
    return Config.from_dict({"preset": name, "model": model, "train": train, "run": run or {}})


PRESETS = {
    # The tutorial exactly: BatchNorm + dropout critic, one shared step, Adam(2e-4) default betas,
    # and Keras's semantics where PyTorch's differ (padding, Adam's epsilon, shuffle(10000)).
    "seed": lambda: _preset(
        "seed", dict(padding="keras"),
        dict(loss="wasserstein", penalty="gp", shared_step=True, gp_eval_mode=True, n_critic=1,
             epochs=100, g_lr=2e-4, c_lr=2e-4, betas=(0.9, 0.999), adam_eps=1e-7,
             adam_eps_form="keras", shuffle_buffer=10_000, z_dist="uniform"),
        dict(dataset="mnist", sample_scaling="per-image")),
    # Gulrajani et al. 2017: no BatchNorm in the critic, n_critic 5, Adam(1e-4, 0, 0.9).
    "wgan-gp": lambda: _preset(
        "wgan-gp", dict(critic_norm="layer", dropout=0.0, slope=0.2),
        dict(loss="wasserstein", penalty="gp", n_critic=5, g_lr=1e-4, c_lr=1e-4,
             betas=(0.0, 0.9), z_dist="normal")),
    # Radford et al. 2016: non-saturating loss, BatchNorm discriminator, Adam(2e-4, 0.5).
    "dcgan": lambda: _preset(
        "dcgan", dict(slope=0.2, dropout=0.0, weight_init="dcgan", z_dim=100),
        dict(loss="non-saturating", penalty="none", n_critic=1, g_lr=2e-4, c_lr=2e-4,
             betas=(0.5, 0.999), z_dist="normal")),
    # Arjovsky et al. 2017: weight clipping, RMSprop 5e-5, n_critic 5.
    "wgan": lambda: _preset(
        "wgan", dict(critic_norm="batch", dropout=0.0, slope=0.2),
        dict(loss="wasserstein", penalty="none", n_critic=5, optimizer="rmsprop", g_lr=5e-5,
             c_lr=5e-5, clip=0.01, z_dist="normal")),
    # Miyato et al. 2018: hinge loss, spectral norm in the critic, no normalisation layers.
    "sngan": lambda: _preset(
        "sngan", dict(critic_norm="none", dropout=0.0, slope=0.1, spectral_norm=True),
        dict(loss="hinge", penalty="none", n_critic=1, g_lr=2e-4, c_lr=2e-4, betas=(0.0, 0.9),
             z_dist="normal")),
    # Narrow WGAN-GP sized for 2 CPU cores: recognisable Fashion-MNIST in a few minutes.
    "cpu-demo": lambda: _preset(
        "cpu-demo", dict(g_filters=64, c_filters=32, critic_norm="layer", dropout=0.0,
                         slope=0.2, z_dim=64),
        dict(loss="wasserstein", penalty="gp", n_critic=5, batch_size=64, g_lr=1e-4,
             c_lr=1e-4, betas=(0.0, 0.9), z_dist="normal", minutes=8.0)),
    # The recipe study's winner for quality per minute on 2 CPU cores (docs/sweep-cpu.md): the
    # WGAN-GP loss and critic, one critic update per step, batch 32, Adam(8e-4, 0, 0.9), and
    # BatchNorm statistics that follow the generator's weights (momentum 0.1) for early samples;
    # a generator EMA (0.999), which an ensemble measured better from 2,000 steps (README).
    "fast": lambda: _preset(
        "fast", dict(g_filters=64, c_filters=32, critic_norm="layer", dropout=0.0, slope=0.2,
                     z_dim=64, bn_momentum=0.1),
        dict(loss="wasserstein", penalty="gp", n_critic=1, batch_size=32, g_lr=8e-4,
             c_lr=8e-4, betas=(0.0, 0.9), z_dist="normal", ema_decay=0.999)),
    # `fast` with class labels: conditional BatchNorm in the generator and an AC-GAN classifier
    # head on the critic, the best of none/projection/AC-GAN at equal time (README).
    "fast-acgan": lambda: dataclasses.replace(
        apply_overrides(PRESETS["fast"](), {"model": {"conditional": "acgan"}}),
        preset="fast-acgan"),
}


def get_preset(name: str) -> Config:
    """A fresh Config of a named preset (see PRESETS); ConfigError for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]()


def validate(cfg: Config) -> Config:
    """Raise ConfigError naming the flag for any value the run could not use, or that lies
    outside its meaningful range (see validation.py)."""
    from .validation import check_config

    check_config(cfg)
    return cfg


# Fields that may change when a run is resumed; everything else defines the run.
RESUMABLE = {("train", "epochs"), ("train", "steps"), ("train", "minutes")} | {
    ("run", f.name) for f in dataclasses.fields(RunConfig)
    if f.name not in ("dataset", "max_images")} | {
    ("speed", f.name) for f in dataclasses.fields(SpeedConfig)}


def apply_overrides(cfg: Config, overrides: dict[str, dict[str, Any]]) -> Config:
    """Return a copy of cfg with {section: {field: value}} replaced (cfg is not changed)."""
    overrides = upgrade(overrides, whole=False)
    sections = {name: dataclasses.replace(getattr(cfg, name), **overrides.get(name, {}))
                for name in SECTIONS}
    return Config(preset=cfg.preset, **sections)


def check_resume(saved: Config, overrides: dict[str, dict[str, Any]]) -> None:
    """A resumed run keeps its config; only run-length, logging and speed flags may change."""
    for section, values in upgrade(overrides, whole=False).items():
        for name, value in values.items():
            current = getattr(getattr(saved, section), name)
            if (section, name) not in RESUMABLE and value != current:
                raise ConfigError(
                    f"--{name.replace('_', '-')}: the run being resumed has {current!r}; "
                    f"only --epochs, --steps, --minutes, logging and speed flags may change on "
                    f"--resume")
