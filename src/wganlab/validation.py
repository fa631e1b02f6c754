"""The checks behind config.validate: types, choices and meaningful ranges of every field.

A value outside its range is a typo or a misunderstanding, never a setting: a 1e9-filter
network, a learning rate of 1e6, a seed torch cannot take. Each check raises ConfigError
naming the flag, so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config, ModelConfig, RunConfig, TrainConfig

# Meaningful ranges: a value outside them is a typo or a misunderstanding, never a setting
# (a 1e9-filter network, a learning rate of 1e6, a seed torch cannot take).
MAX_IMAGE_SIDE = 1024
MAX_PARAMETERS = 200_000_000  # per network: 800 MB of fp32 weights before optimizer state
MAX_ACTIVATIONS = 2 ** 27  # floats of the largest layer output, per image (512 MB)
MAX_SEED = 2 ** 62  # the run also seeds with seed + 1 and seed + 2
MAX_MEMBERS = 4096  # --ensemble; what fits in memory is checked when the run starts
DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")
MAX_CLASSES = 10_000  # a class embedding per class: more is a mistaken label column


def _need(ok: bool, flag: str, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"--{flag.replace('_', '-')}: {allowed}")


def _in_range(sect, name: str, low, high, optional: bool = False) -> None:
    value = getattr(sect, name)
    if optional and value is None:
        return
    _need(isinstance(value, (int, float)) and not isinstance(value, bool)
          and low <= value <= high, name, f"must be in [{low:g}, {high:g}]; got {value!r}")


def _type_ok(value, hint: str) -> bool:
    """Does value fit a field's annotation ("int", "float | None", "tuple[float, float]")?"""
    if value is None:
        return "None" in hint
    kinds = [k for k in hint.split(" | ") if k != "None"]
    if len(kinds) > 1:  # "float | str": either
        return any(_type_ok(value, k) for k in kinds)
    base = kinds[0]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if base.startswith("tuple["):
        kinds = [k.strip() for k in base[len("tuple["):-1].split(",")]
        if kinds[-1] == "...":  # tuple[str, ...]: any length, one kind
            return isinstance(value, (tuple, list)) and all(_type_ok(v, kinds[0]) for v in value)
        return isinstance(value, (tuple, list)) and len(value) == len(kinds) and all(
            _type_ok(v, k) for v, k in zip(value, kinds))
    return {"int": isinstance(value, int) and not isinstance(value, bool),
            "float": number and math.isfinite(value), "bool": isinstance(value, bool),
            "str": isinstance(value, str)}.get(base, True)


def _check_types(cfg: Config) -> None:
    for sect in (cfg.model, cfg.train, cfg.run, cfg.speed):
        for f in dataclasses.fields(sect):
            value = getattr(sect, f.name)
            _need(_type_ok(value, str(f.type)), f.name,
                  f"expected {str(f.type).replace(' | None', ' or nothing')}; got {value!r}")


def _check_choices(cfg: Config) -> None:
    for sect in (cfg.model, cfg.train, cfg.run, cfg.speed):
        for f in dataclasses.fields(sect):
            choices = f.metadata.get("choices")
            value = getattr(sect, f.name)
            if choices and value not in choices:
                _need(False, f.name, f"must be one of {', '.join(choices)}; got {value!r}")


def _check_model(m: ModelConfig, native: tuple | None) -> None:
    _in_range(m, "z_dim", 1, 10_000)
    _in_range(m, "n_blocks", 0, 8)
    _in_range(m, "c_filters", 1, 4096)
    _need(0.0 <= m.dropout < 1.0, "dropout", f"must be in [0, 1); got {m.dropout}")
    _in_range(m, "slope", 0.0, 1.0)
    _in_range(m, "bn_momentum", 0.0, 1.0)
    _need(0.0 < m.bn_eps <= 1.0, "bn_eps", f"must be in (0, 1]; got {m.bn_eps}")
    shape = _check_shape(m, m.image_shape if m.image_shape is not None else native)
    _in_range(m, "g_filters", 2 ** m.n_blocks, 8192)  # halved per block
    if m.class_names is not None:
        names = m.class_names
        _need(2 <= len(names) <= MAX_CLASSES, "class_names",
              f"must name 2 to {MAX_CLASSES:,} classes; got {len(names)}")
        _need(all(n.strip() for n in names) and len(set(names)) == len(names), "class_names",
              f"must be distinct, non-empty names; got {', '.join(map(repr, names[:12]))}")
    if shape is not None:
        _check_size(m, shape)


def _check_shape(m: ModelConfig, shape: tuple | None) -> tuple[int, int, int] | None:
    """The image shape the networks get (given, or the data set's own), checked."""
    if shape is None:  # an image folder without --image-shape: sized when it loads
        return None
    flag = "image_shape" if m.image_shape is not None else "n_blocks"
    _need(len(shape) == 3 and all(isinstance(s, int) and s >= 1 for s in shape),
          "image_shape", f"must be C,H,W with positive sizes; got {shape}")
    from .models import check_image_size

    c, h, w = shape
    _need(c in (1, 3), "image_shape", f"channels must be 1 or 3; got {c}")
    _need(h <= MAX_IMAGE_SIDE and w <= MAX_IMAGE_SIDE, "image_shape",
          f"H and W must be at most {MAX_IMAGE_SIDE}; got {h}x{w}")
    check_image_size(shape, m.n_blocks, flag.replace("_", "-"))
    return c, h, w


def _check_size(m: ModelConfig, shape: tuple[int, int, int]) -> None:
    """Refuse networks no machine can hold."""
    c, h, w = shape
    largest = max(m.c_filters * h * w, m.g_filters * h * w // 4 ** m.n_blocks,
                  m.g_filters // 2 ** m.n_blocks * h * w)
    _need(largest <= MAX_ACTIVATIONS, "image_shape" if m.image_shape else "c_filters",
          f"a layer of these networks would hold {largest:,} values per {h}x{w} image; "
          f"at most {MAX_ACTIVATIONS:,} (use fewer filters or smaller images)")
    for count, net, flag in zip(parameter_counts(m, shape), ("generator", "critic"),
                                ("g_filters", "c_filters")):
        _need(count <= MAX_PARAMETERS, flag, f"the {net} would have {count:,} parameters; "
                                             f"at most {MAX_PARAMETERS:,}")


def parameter_counts(m: ModelConfig, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(generator, critic) parameters, counted on the meta device (no memory used)."""
    import torch

    from .models import build_models

    # Before the data names its classes, a conditional model is counted without them.
    known = m.conditional if m.class_names is not None else "none"
    # Spectral norm adds buffers, not parameters, and its power iteration at construction
    # costs seconds even on the meta device: count without it.
    with torch.device("meta"):
        nets = build_models(dataclasses.replace(m, weight_init="pytorch", conditional=known,
                                                spectral_norm=False), shape)
    g, c = (sum(p.numel() for p in net.parameters()) for net in nets)
    return g, c


def _check_train(t: TrainConfig) -> None:
    _in_range(t, "n_critic", 1, 100)
    _in_range(t, "batch_size", 2, 65_536)
    _in_range(t, "epochs", 1, 1_000_000, optional=True)
    _in_range(t, "steps", 1, 10 ** 9, optional=True)
    _need(t.minutes is None or 0 < t.minutes <= 1e6, "minutes",
          f"must be in (0, 1e+06]; got {t.minutes}")
    for name in ("g_lr", "c_lr"):
        _need(0 < getattr(t, name) <= 1.0, name, f"must be in (0, 1]; got {getattr(t, name)}")
    _need(len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas), "betas",
          f"must be two numbers in [0, 1); got {t.betas}")
    _need(0 <= t.ema_decay < 1, "ema_decay", f"must be in [0, 1); got {t.ema_decay}")
    _need(0 < t.adam_eps <= 1.0, "adam_eps", f"must be in (0, 1]; got {t.adam_eps}")
    _in_range(t, "shuffle_buffer", 1, 10 ** 9, optional=True)
    _in_range(t, "gp_weight", 0.0, 1e4)
    _need(t.clip is None or 0 < t.clip <= 10, "clip", f"must be in (0, 10]; got {t.clip}")
    _in_range(t, "seed", 0, MAX_SEED)
    _check_ensemble(t)
    _need(not (t.shared_step and t.n_critic != 1), "n_critic",
          "the shared (tutorial) step needs n_critic 1")
    _check_augment(t)
    _in_range(t, "acgan_weight", 0.0, 1e3)


def _check_augment(t: TrainConfig) -> None:
    from .augment import parse_policies

    try:
        policies = parse_policies(t.augment)
    except ValueError as e:
        raise ConfigError(f"--augment: {e}") from None
    p = t.augment_p
    _need(p == "auto" or (isinstance(p, (int, float)) and not isinstance(p, bool)
                          and 0.0 <= p <= 1.0), "augment_p",
          f"must be a probability in [0, 1] or auto; got {p!r}")
    _need(p != "auto" or bool(policies), "augment_p",
          "auto adapts the probability of --augment's policies: give --augment too")
    _in_range(t, "augment_target", -1.0, 1.0)
    _in_range(t, "augment_speed", 1, 1e12)
    _in_range(t, "augment_interval", 1, 1_000_000)
    for name, what in (("augment_target", "the heuristic that"), ("augment_speed", "how fast"),
                       ("augment_interval", "how often")):
        default = next(f.default for f in dataclasses.fields(t) if f.name == name)
        _need(p == "auto" or getattr(t, name) == default, name,
              f"is {what} --augment-p auto adapts p: give --augment-p auto too")


def _check_ensemble(t: TrainConfig) -> None:
    _need(isinstance(t.ensemble, int) and 1 <= t.ensemble <= MAX_MEMBERS, "ensemble",
          f"must be a number of members in [1, {MAX_MEMBERS}]; got {t.ensemble!r}")
    if t.seeds is not None:
        _need(t.ensemble > 1, "seeds", "are the seeds of an ensemble's members; for one "
                                       "model give --seed")
        _need(len(t.seeds) == t.ensemble, "seeds",
              f"needs one seed per member: {t.ensemble} for --ensemble {t.ensemble}; got "
              f"{len(t.seeds)}")
        _need(all(0 <= s <= MAX_SEED for s in t.seeds), "seeds",
              f"each must be in [0, {MAX_SEED:g}]; got {t.seeds}")
        _need(len(set(t.seeds)) == len(t.seeds), "seeds",
              f"members with one seed are one model twice; got {t.seeds}")
    else:
        _need(t.seed + t.ensemble - 1 <= MAX_SEED, "seed",
              f"seed + ensemble - 1 must be at most {MAX_SEED:g}")


def _check_run(r: RunConfig) -> None:
    _in_range(r, "log_every", 1, 10 ** 9)
    _in_range(r, "keep_last", 1, 10_000)
    _in_range(r, "eval_every", 1, 10 ** 9, optional=True)
    _in_range(r, "eval_n", 2, 100_000)
    _in_range(r, "checkpoint_every", 1, 10 ** 9, optional=True)
    _in_range(r, "keep_every", 1, 10 ** 9, optional=True)
    _in_range(r, "max_images", 1, 10 ** 9, optional=True)
    # "user": images passed from Python, wganlab.train(cfg, data=...).
    dataset_ok = r.dataset in ("mnist", "fashion-mnist", "cifar10", "synthetic", "user") or (
        r.dataset.startswith("folder:") and r.dataset[len("folder:"):].strip() != "")
    _need(dataset_ok, "dataset", "must be mnist, fashion-mnist, cifar10, synthetic or "
                                 f"folder:PATH; got {r.dataset!r}")
    _need(not (r.dataset == "user" and r.eval_every), "eval_every",
          "needs a named data set as the reference; for images given from Python evaluate "
          "samples with wganlab.evaluate_images(images, dataset=...)")
    for name in ("out", "data_dir", "dataset"):
        value = getattr(r, name)
        _need(value is None or (value.strip() and "\0" not in value), name,
              f"must be a usable path; got {value!r}")
    kind, _, index = r.device.partition(":")
    _need(kind in DEVICE_TYPES and (not index or (kind == "cuda" and index.isdigit())),
          "device", f"must be auto, cpu, cuda, cuda:N or mps; got {r.device!r}")


def check_config(cfg: Config) -> None:
    """Raise ConfigError naming the first flag whose value is of the wrong type, not one of
    its choices, or outside its meaningful range."""
    from .data import native_shape

    _check_types(cfg)
    _check_choices(cfg)
    _check_run(cfg.run)
    _check_train(cfg.train)
    native = None if cfg.run.dataset == "user" else native_shape(cfg.run.dataset)
    _check_model(cfg.model, native)
    _need(not (cfg.model.conditional == "acgan" and cfg.train.feature_matching),
          "feature_matching", "the generator's loss is the critic's features there, which "
                              "leave AC-GAN's classifier out: use --conditional projection")
    _need(not (cfg.train.ensemble > 1 and cfg.model.spectral_norm
               and cfg.speed.ensemble_vmap is True),
          "ensemble_vmap", "spectral norm's power iteration has no torch.vmap rule yet; "
                           "drop --ensemble-vmap to run the members one after another")
