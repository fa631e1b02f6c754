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
from .config_file import base_config, read_config_file

DEFAULT_PRESET = "wgan-gp"
MAX_IMAGES = 100_000  # per command: more is a typo (and hours of PNG writing)


def in_range(value: int, flag: str, low: int, high: int) -> None:
    """A command's own integer flag, checked against its meaningful range."""
    if not low <= value <= high:
        raise ConfigError(f"{flag}: must be in [{low}, {high:,}]; got {value}")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):  # one line, exit 2, no usage wall
        """Print the error as one line and exit 2."""
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


def _number_or_word(text: str) -> float | str:
    """A number, or a word such as auto (the field's check says which words it takes)."""
    try:
        return _finite(text)
    except argparse.ArgumentTypeError:
        if text.strip() and not text.strip()[0].isdigit():
            return text.strip()
        raise


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 1,28,28; got {text!r}") from None
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected three sizes C,H,W; got {text!r}")
    return shape


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (class names), each stripped."""
    return tuple(part.strip() for part in text.split(","))


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
            choices = f.metadata.get("choices")
            kw = dict(dest=f"{section}.{f.name}", default=argparse.SUPPRESS,
                      help=f.metadata["help"],
                      choices=choices and (*choices, *f.metadata.get("aliases", ())))
            if hint.startswith("bool") or hint == "<class 'bool'>":
                kw.update(action=argparse.BooleanOptionalAction)
            elif "tuple[int, int, int]" in hint:
                kw.update(type=_shape, metavar="C,H,W")
            elif "float | str" in hint:
                kw.update(type=_number_or_word, metavar="X|auto")
            elif "tuple[str, ...]" in hint:
                kw.update(type=_names, metavar="A,B,...")
            elif "tuple[int, ...]" in hint:
                kw.update(type=int, nargs="+", metavar="N")
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
    """{section: {field: value}} of the config flags that were given."""
    out: dict[str, dict] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = tuple(value) if isinstance(value, list) else value
    return out


def resolve_config(args: argparse.Namespace) -> tuple[C.Config, bool | str]:
    """The preset, then --config FILE's settings, then the given flags (each overriding the
    one before); with --resume, the run's saved config plus the file's and flags' changes."""

    config_file = getattr(args, "config", None)
    file_preset, file_values = read_config_file(config_file) if config_file else (None, {})
    flag_values = overrides_from(args)
    overrides = _merged(file_values, flag_values)
    preset = getattr(args, "preset", None) or file_preset
    _refuse_user_dataset(overrides)
    resume = getattr(args, "resume", None)
    if resume not in (None, "latest") and not Path(resume).is_file():
        raise ConfigError(f"--resume: {resume}: no such checkpoint file")
    init_from = getattr(args, "init_from", None)
    if init_from is not None and not Path(init_from).is_file():
        raise ConfigError(f"--init-from: {init_from}: no such checkpoint file")
    if resume is not None:
        out = Path(overrides.get("run", {}).get("out") or _checkpoint_run_dir(resume))
        saved = out / "config.json"
        if saved.exists():
            cfg = _saved_config(saved)
            if preset is not None and preset != cfg.preset:
                where = "--preset" if args.preset else f"{config_file}: preset"
                raise ConfigError(f"{where}: the run being resumed is {cfg.preset!r}")
            C.check_resume(cfg, overrides)
            overrides.setdefault("run", {})["out"] = str(out)
            return C.validate(C.apply_overrides(cfg, overrides)), (
                resume if resume != "latest" else True)
        if resume == "latest":
            print(f"{out} holds no run yet; starting a new one")
    cfg = C.apply_overrides(base_config(preset or DEFAULT_PRESET), overrides)
    if "out" not in overrides.get("run", {}):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank must name the same folder
            raise ConfigError("--out: give the run directory explicitly under torchrun")
        cfg.run.out = _fresh_dir(Path("runs") / cfg.preset)
    _validate(cfg, config_file, file_values, flag_values)
    # A checkpoint path is always loaded (and checked against this config), never ignored.
    return cfg, (resume if resume not in (None, "latest") else bool(resume))


def _merged(file_values: dict, flag_values: dict) -> dict[str, dict]:
    """{section: {field: value}}: the file's settings with the flags' on top."""
    out = {name: dict(values) for name, values in file_values.items()}
    for name, values in flag_values.items():
        out.setdefault(name, {}).update(values)
    return out


def _refuse_user_dataset(overrides: dict) -> None:
    if overrides.get("run", {}).get("dataset") == "user":
        raise ConfigError("--dataset: 'user' marks images given from Python "
                          "(wganlab.train(cfg, data=...)); here give mnist, fashion-mnist, "
                          "cifar10, synthetic or folder:PATH")


def _validate(cfg: C.Config, config_file, file_values: dict, flag_values: dict) -> None:
    """C.validate, with an error about a setting that came from the file (not from a flag)
    told as the file's key rather than as a flag the user never typed."""
    try:
        C.validate(cfg)
    except ConfigError as e:
        flag, _, message = str(e).partition(": ")
        name = flag.removeprefix("--").replace("-", "_")
        for section, values in file_values.items():
            if name in values and name not in flag_values.get(section, {}):
                raise ConfigError(f"{config_file}: {section}.{name} = {values[name]!r}: "
                                  f"{message}") from None
        raise


def _saved_config(path: Path) -> C.Config:
    """A run's config.json, checked like flags are; a damaged file is named, not traced."""
    from ..runfiles import read_config

    return read_config(path)


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
