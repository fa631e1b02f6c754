"""Config flags generated from the dataclasses, and the config they resolve to."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing
from pathlib import Path

from .. import config as C
from ..errors import ConfigError

DEFAULT_PRESET = "wgan-gp"
MAX_IMAGES = 100_000  # per command: more is a typo (and hours of PNG writing)
MAX_SEED = 2 ** 63 - 1  # what torch.Generator.manual_seed takes


def in_range(value: int, flag: str, low: int, high: int) -> None:
    """A command's own integer flag, checked against its meaningful range."""
    if not low <= value <= high:
        raise ConfigError(f"{flag}: must be in [{low}, {high:,}]; got {value}")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage wall
        self.exit(2, f"{self.prog}: error: {message}\n")


def _finite(text: str) -> float:
    """A float flag's value; inf and nan are refused (no setting here means "unlimited")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 1,28,28; got {text!r}") from None
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected three sizes C,H,W; got {text!r}")
    return shape


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset = frozenset()) -> None:
    """One flag per config field (but those in `skip`); defaults are suppressed so only given
    flags override."""
    for section, kind in C.SECTIONS.items():
        group = parser.add_argument_group(f"{section} config")
        hints = typing.get_type_hints(kind)
        for f in dataclasses.fields(kind):
            if f.name in skip:
                continue
            flag, hint = "--" + f.name.replace("_", "-"), str(hints[f.name])
            kw = dict(dest=f"{section}.{f.name}", default=argparse.SUPPRESS,
                      help=f.metadata["help"], choices=f.metadata.get("choices"))
            if hint.startswith("bool") or hint == "<class 'bool'>":
                kw.update(action=argparse.BooleanOptionalAction)
            elif "tuple[int, int, int]" in hint:
                kw.update(type=_shape, metavar="C,H,W")
            elif "tuple[float, float]" in hint:
                kw.update(type=_finite, nargs=2, metavar=("B1", "B2"))
            elif "float" in hint:
                kw.update(type=_finite, metavar="X")
            elif "int" in hint:
                kw.update(type=int, metavar="N")
            elif not kw["choices"]:
                kw.update(metavar="TEXT")
            group.add_argument(flag, **kw)


def overrides_from(args: argparse.Namespace) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = tuple(value) if isinstance(value, list) else value
    return out


def resolve_config(args: argparse.Namespace) -> tuple[C.Config, bool | str]:
    """The preset plus the given flags; with --resume, the run's saved config plus the flags."""

    overrides = overrides_from(args)
    resume = getattr(args, "resume", None)
    if resume is not None:
        out = Path(overrides.get("run", {}).get("out") or _checkpoint_run_dir(resume))
        saved = out / "config.json"
        if saved.exists():
            cfg = _saved_config(saved)
            if args.preset is not None and args.preset != cfg.preset:
                raise ConfigError(f"--preset: the run being resumed is {cfg.preset!r}")
            C.check_resume(cfg, overrides)
            overrides.setdefault("run", {})["out"] = str(out)
            return C.validate(C.apply_overrides(cfg, overrides)), (
                resume if resume != "latest" else True)
        if resume == "latest":
            print(f"{out} holds no run yet; starting a new one")
    cfg = C.apply_overrides(C.get_preset(args.preset or DEFAULT_PRESET), overrides)
    if "out" not in overrides.get("run", {}):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank must name the same folder
            raise ConfigError("--out: give the run directory explicitly under torchrun")
        cfg.run.out = _fresh_dir(Path("runs") / cfg.preset)
    # A checkpoint path is always loaded (and checked against this config), never ignored.
    return C.validate(cfg), (resume if resume not in (None, "latest") else bool(resume))


def _saved_config(path: Path) -> C.Config:
    """A run's config.json, checked like flags are; a damaged file is named, not traced."""
    import json

    try:
        return C.validate(C.Config.from_dict(json.loads(path.read_text())))
    except (ValueError, TypeError, AttributeError) as e:  # ConfigError and JSON errors too
        raise ConfigError(f"{path}: not a usable run config ({str(e)[:200]})") from None


def _checkpoint_run_dir(resume: str) -> str:
    if resume == "latest":
        raise ConfigError("--resume: give the run with --out RUN, or a checkpoint path")
    return str(Path(resume).resolve().parent.parent)


def _fresh_dir(base: Path) -> str:
    n, path = 1, base
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)
