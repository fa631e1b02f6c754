"""Load a trained generator (run directory, checkpoint or safetensors export) and sample it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .base import checkpoint
from .base.files import atomic_write
from .base.images import to_uint8
from .base.weights_check import check_dtypes
from .conditioning import asked_classes, class_index, class_mix, class_names
from .config import Config, validate
from .data import sample_z
from .ensemble import member_config, member_state
from .errors import CheckpointError, ConfigError
from .models import Generator, build_generator, eval_mode
from .runfiles import best_checkpoint
from .version import __version__

WEIGHTS = ("ema", "raw")  # which generator a checkpoint gives: the averaged one or the raw one


def _config_from(saved, source: Path) -> Config:
    """The config a file carries, checked before it sizes anything."""
    try:
        cfg = validate(Config.from_dict(json.loads(saved) if isinstance(saved, str) else saved))
        if cfg.model.image_shape is None:
            raise ConfigError("no image shape")
        return cfg
    except (ValueError, TypeError, AttributeError) as e:  # ConfigError and JSON errors too
        raise CheckpointError(f"{source}: the config it carries is not valid ({e})") from e


def averaged_generator(state: dict) -> dict | None:
    """The averaged generator's state_dict from a checkpoint's "ema" entry (written by
    training/ema.py: an AveragedModel's state, the generator's under "module."), if any."""
    ema = state.get("ema")
    if not ema:
        return None
    prefix = "module."
    return {k[len(prefix):]: v for k, v in ema["averaged"].items() if k.startswith(prefix)}


def _generator_from(cfg: Config, weights: dict, source: Path) -> Generator:
    def build():  # models.build_generator is the one place a generator is built
        return build_generator(cfg.model, cfg.model.image_shape, init=False)

    # Build on the meta device first (no memory): a forged config cannot make us allocate
    # more than the weights the file really holds.
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    given = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if shapes != given:
        wrong = sorted(set(shapes.items()) ^ set(given.items()))[:2]
        raise CheckpointError(f"{source}: generator weights do not fit its config "
                              f"(first mismatches: {wrong})")
    check_dtypes(weights, build, source)  # an I32 header over float weights is refused
    bad = [k for k, v in weights.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not v.isfinite().all()]
    if bad:  # it would draw NaN images (black PNGs) and say nothing
        raise CheckpointError(f"{source}: the generator's weights hold NaN or Inf "
                              f"(in {', '.join(bad[:3])}); use an earlier checkpoint")
    generator = build()
    try:
        generator.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: generator weights do not fit its config "
                              f"({str(e).splitlines()[0]})") from e
    return generator.eval()


EXPORT_WEIGHTS = "model.safetensors"  # the weights file of an export folder
HUB_PREFIX = "hf://"


def load_generator(source: str | Path, device: str | torch.device = "cpu",
                   weights: str = "ema", checkpoint: str | Path | None = None,
                   member: int | None = None) -> Generator:
    """A trained generator in eval mode, from any of the places wganlab keeps one.

    source: a run directory (its newest valid checkpoint), a checkpoint file (.pt), an export
    folder or .safetensors file from `wganlab export`, or hf://USER/REPO[@REVISION] (an
    export folder on the Hugging Face Hub; needs the hub extra). checkpoint: a checkpoint
    file to take instead of the run's newest, or "best": the run's checkpoint of the lowest
    FID measured while it trained (--eval-every; runfiles.best_checkpoint).

    The generator carries `.config` (the run's Config) and `.provenance` (a dict: checkpoint,
    step, weights, and "note" for checkpoints from before EMA). weights="ema" takes the
    averaged generator where the checkpoint has one (a run trained with --ema-decay > 0) and
    falls back to the raw weights where it has none (provenance["weights"] says which);
    weights="raw" always takes the raw ones. An export holds the one set it was exported with.

    member: which member of an ensemble run (--ensemble N) to load, 0 to N-1: its own network
    and a config as of its single run (required for an ensemble; 0 or None otherwise).
    """
    generator, cfg, info = _load(source, checkpoint, device, weights, member)
    generator.config, generator.provenance = cfg, info
    return generator


def ensemble_size(source: str | Path, checkpoint_path=None) -> int:
    """How many members the run (or checkpoint) holds: --ensemble N, or 1 (exports too)."""
    path = Path(_named(source, checkpoint_path) or source)
    try:
        if path.is_dir() and (path / "config.json").is_file():
            saved = json.loads((path / "config.json").read_text())
        elif path.suffix == ".pt":
            saved = checkpoint.load(path).get("config") or {}
        else:
            return 1
        return int(saved.get("train", {}).get("ensemble", 1))
    except (OSError, ValueError, AttributeError, TypeError):
        return 1  # the loader names what is wrong with it


def _named(source, checkpoint_path):
    """The checkpoint file a --checkpoint value names: "best" is resolved in the run."""
    return best_checkpoint(source) if str(checkpoint_path) == "best" else checkpoint_path


def _load(source, checkpoint_path, device, weights, member=None
          ) -> tuple[Generator, Config, dict]:
    if weights not in WEIGHTS:
        raise ConfigError(f"--weights: must be one of {', '.join(WEIGHTS)}; got {weights!r}")
    checkpoint_path = _named(source, checkpoint_path)
    if checkpoint_path is None and str(source).startswith(HUB_PREFIX):
        source = _from_hub(str(source))
    source = Path(checkpoint_path or source)
    if source.is_dir() and (source / EXPORT_WEIGHTS).is_file():
        source = source / EXPORT_WEIGHTS
    if source.suffix == ".safetensors":
        return _load_export(source, device, member)
    if source.is_dir():
        found = checkpoint.latest_valid(source)
        if found is None:
            raise CheckpointError(f"{source}: no loadable checkpoint in {source / 'checkpoints'}")
        source, state = found
    else:
        state = checkpoint.load(source)
    cfg = _config_from(state.get("config"), source)
    info = {"checkpoint": str(source), "step": state.get("step"), "weights": weights}
    chosen = averaged_generator(state) if weights == "ema" else state["generator"]
    if chosen is None:
        chosen, info["weights"] = state["generator"], "raw"
        if "ema_decay" not in (state.get("config") or {}).get("train", {}):  # before EMA existed
            info["note"] = f"{source}: a checkpoint from before EMA; using its raw weights"
    members = cfg.train.ensemble
    if members > 1 and member is None:
        raise ConfigError(f"--member: {source} holds an ensemble of {members} models; choose "
                          f"one with --member 0 to {members - 1}")
    if member is not None:
        if members > 1:
            chosen = member_state(chosen, member, members)
        member_state({}, member, members)  # the range check, for one model too
        cfg, info["member"] = member_config(cfg, member), member
    generator = _generator_from(cfg, chosen, source).to(device)
    return generator, cfg, info


def _from_hub(spec: str) -> Path:
    """Download (or find in the local cache) an export folder from the Hugging Face Hub."""
    repo, _, revision = spec[len(HUB_PREFIX):].partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{spec}: loading from the Hugging Face Hub needs the hub extra "
                              "(pip install -e '.[hub]')") from None
    try:
        folder = snapshot_download(repo_id=repo, revision=revision or None,
                                   allow_patterns=[EXPORT_WEIGHTS, "config.json", "README.md"])
    except Exception as e:  # noqa: BLE001 - the hub raises many types; all mean "not loaded"
        raise CheckpointError(f"{spec}: cannot download ({type(e).__name__}: {e})") from e
    if not (Path(folder) / EXPORT_WEIGHTS).is_file():
        raise CheckpointError(f"{spec}: the repository holds no {EXPORT_WEIGHTS} (share one "
                              "with `wganlab export RUN --out DIR --push-to-hub USER/REPO`)")
    return Path(folder)


def export(source: str | Path, out: str | Path, checkpoint_path=None,
           weights: str = "ema", member: int | None = None) -> Path:
    """Write the generator's weights (EMA by default, with running statistics) and config
    as safetensors (of an ensemble, member `member`'s, with its single-run config)."""
    return save_export(load_generator(source, weights=weights, checkpoint=checkpoint_path,
                                      member=member), out)


def save_export(generator: Generator, out: str | Path) -> Path:
    """One .safetensors file: a loaded generator's weights, with its config and step as
    metadata."""
    cfg, info = generator.config, generator.provenance
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"config": cfg.to_json(), "step": str(info["step"]), "format": "wganlab-generator",
            "wganlab_version": __version__, "weights": info.get("weights", "raw")}
    data = save(tensors, metadata=meta)
    return atomic_write(out, lambda f: f.write(data))


def _load_export(path: Path, device, member=None) -> tuple[Generator, Config, dict]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from e
    if meta.get("format") != "wganlab-generator" or "config" not in meta:
        raise CheckpointError(f"{path}: not a wganlab generator export (no config metadata)")
    cfg = _config_from(meta["config"], path)
    if member not in (None, 0):  # an export holds one model (an ensemble's one member)
        member_state({}, member, 1)
    generator = _generator_from(cfg, weights, path).to(device)
    step = meta.get("step")
    return generator, cfg, {"checkpoint": str(path), "weights": meta.get("weights", "raw"),
                            "step": int(step) if step and step.isdigit() else None}


@torch.no_grad()
def sample(generator: Generator, n: int, seed: int = 0, z_dist: str | None = None,
           device: str | torch.device | None = None, uint8: bool = True,
           batch_size: int = 500, labels=None) -> torch.Tensor:
    """n images from a seeded z, the generator in inference mode; the same seed gives the same
    images. uint8 (n, C, H, W) on the CPU, or with uint8=False floats in [-1, 1] on `device`.

    z_dist ("normal" or "uniform") defaults to the one the generator was trained with, as
    load_generator records it; device to the generator's own. labels (class-conditional
    generators only): one class for all (an index or a name such as "Sneaker") or one per
    image; default every class in turn. The same seed gives the same z whatever the labels.
    """
    cfg = getattr(generator, "config", None)
    z_dist = z_dist or (cfg.train.z_dist if cfg is not None else None)
    if z_dist is None:
        raise ConfigError("sample: this generator has no training config; pass z_dist "
                          "('normal' or 'uniform', as it was trained)")
    device = device or next(generator.parameters()).device
    classes = asked_classes(generator, labels, n, device)
    z = latents(generator, n, seed, z_dist, device)
    with eval_mode(generator):
        if classes is None:
            images = torch.cat([generator(chunk) for chunk in z.split(batch_size)])
        else:
            images = torch.cat([generator(chunk, y) for chunk, y in
                                zip(z.split(batch_size), classes.split(batch_size))])
    return to_uint8(images) if uint8 else images


def latents(generator: Generator, n: int, seed: int, z_dist: str, device) -> torch.Tensor:
    """The n latent vectors sample() draws for `seed` (the same seed, the same z)."""
    rng = torch.Generator(device=device).manual_seed(seed)
    return sample_z(n, generator.z_dim, z_dist, generator=rng, device=device)


@torch.no_grad()
def class_grid(generator: Generator, z: torch.Tensor, classes=None) -> torch.Tensor:
    """One row per class, one column per z (N, z_dim): the same z across a column, so a
    column shows one "style" in every class. Floats (len(classes) * N, C, H, W); classes
    default to all of the generator's."""
    names = class_names(generator)
    if not names:
        raise ConfigError("class grid: this generator is unconditional (no classes)")
    rows = [class_index(names, k, "classes") for k in classes] if classes is not None \
        else list(range(len(names)))
    with eval_mode(generator):
        return generator(*class_grid_inputs(z, rows))


def class_grid_inputs(z: torch.Tensor, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (z, labels) of a class grid, row by row: every z (N, z_dim) with class rows[0],
    then every z with rows[1], ..."""
    labels = torch.tensor(rows, device=z.device).repeat_interleave(len(z))
    return z.repeat(len(rows), 1), labels


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent points (falls back to linear when parallel)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    lin = (1 - t) * a + t * b
    sph = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return torch.where(so.abs() < 1e-6, lin, sph)


@torch.no_grad()
def interpolation_grid(generator: Generator, rows: int, steps: int, z_dist: str, seed: int,
                       spherical: bool, device="cpu", label=None, to_label=None
                       ) -> torch.Tensor:
    """rows x steps images. Without to_label each row walks from one random latent point to
    another, for a conditional generator within one class (`label`, or row r in class
    r mod K). With to_label each row keeps one random z and walks from class `label` to
    class `to_label` (their embeddings mixed linearly)."""
    names = class_names(generator)
    if (label is not None or to_label is not None) and not names:
        class_index(names, label if label is not None else to_label)  # raises: unconditional
    rng = torch.Generator(device=device).manual_seed(seed)
    ends = sample_z(2 * rows, generator.z_dim, z_dist, generator=rng, device=device)
    t = torch.linspace(0, 1, steps, device=device)
    if to_label is not None:  # between classes, at a fixed z per row
        a = class_index(names, 0 if label is None else label, "--class")
        b = class_index(names, to_label, "--to-class")
        mix = class_mix(a, b, t, len(names)).repeat(rows, 1)
        return generator(ends[:rows].repeat_interleave(steps, 0), mix)
    a, b = ends[:rows, None], ends[rows:, None]
    z = slerp(a, b, t[None, :, None]) if spherical else (1 - t[None, :, None]) * a + \
        t[None, :, None] * b
    z = z.reshape(rows * steps, -1)
    if not names:
        return generator(z)
    if label is not None:
        labels = torch.full((rows,), class_index(names, label, "--class"), device=device)
    else:
        labels = torch.arange(rows, device=device) % len(names)
    return generator(z, labels.repeat_interleave(steps))
