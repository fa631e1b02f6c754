"""`--config FILE`: a TOML or JSON file with the sections of a run's config.json.

    preset = "wgan-gp"          # optional: the starting point (flags' --preset wins)
    [train]
    steps = 2000
    [run]
    dataset = "fashion-mnist"

Every key and value is checked here, so an error names the file, the key and what is allowed
(the flags' own checks come later and name flags, which a file user never typed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

from .. import config as C
from ..base.textfile import parse_json, read_text
from ..errors import ConfigError

try:  # Python >= 3.11; tomli is the same parser for 3.10
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - depends on the Python version
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

TOP_KEYS = ("preset", *C.SECTIONS)
MAX_BYTES = 1 << 20  # a settings file is a few hundred bytes; /dev/zero never ends
PATHS = {("run", "out"), ("run", "data_dir"), ("run", "dataset")}  # where `~` is the home
FOLDER = "folder:"
CUSTOM = "custom"  # Config()'s own preset name: the dataclass defaults, no preset applied


def read_config_file(path: str | Path) -> tuple[str | None, dict[str, dict]]:
    """(preset or None, {section: {field: value}}) from the file, every value checked."""
    path = Path(path).expanduser()
    data = _parse(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings; got {type(data).__name__}")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; allowed at the top: "
                          f"{', '.join(TOP_KEYS)}")
    preset = data.get("preset")
    if preset is not None and preset not in (*C.PRESETS, CUSTOM):
        raise ConfigError(f"{path}: preset = {preset!r}: allowed values are "
                          f"{', '.join((*C.PRESETS, CUSTOM))}")
    sections = {name: _section(path, name, data[name]) for name in C.SECTIONS if name in data}
    return preset, sections


def base_config(preset: str) -> C.Config:
    """The starting Config of a preset name, including "custom" (the dataclass defaults)."""
    return C.Config() if preset == CUSTOM else C.get_preset(preset)


def _parse(path: Path):
    if path.suffix not in (".json", ".toml"):
        raise ConfigError(f"--config {path}: give a .toml or .json file")
    text = read_text(path, ConfigError, f"--config {path}", MAX_BYTES)
    if path.suffix == ".json":
        return parse_json(text, str(path), ConfigError)  # a key given twice is refused
    if tomllib is None:
        raise ConfigError(f"{path}: TOML needs Python >= 3.11 or `pip install tomli`; "
                          "or write the same settings as JSON")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def _section(path: Path, name: str, values) -> dict:
    kind = C.SECTIONS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: {name} must be a table of settings; got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    hints = typing.get_type_hints(kind)
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{path}: unknown key {name}.{key}; allowed in [{name}]: "
                              f"{', '.join(fields)}")
        meta = fields[key].metadata
        choices = meta.get("choices") and (*meta["choices"], *meta.get("aliases", ()))
        out[key] = _value(f"{path}: {name}.{key} = {value!r}", value, str(hints[key]), choices)
        if (name, key) in PATHS and isinstance(out[key], str):
            out[key] = _expand(out[key])
    return out


def _expand(value: str) -> str:
    """`~` as a shell reads it: the home folder (also after folder: in a data set)."""
    if value.startswith(FOLDER):
        return FOLDER + os.path.expanduser(value[len(FOLDER):])
    return os.path.expanduser(value)


def _value(where: str, value, hint: str, choices):
    """The value converted to the field's type, or ConfigError saying what is allowed."""
    optional = "None" in hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: this setting cannot be empty")
    if choices:
        if value not in choices:
            raise ConfigError(f"{where}: allowed values are {', '.join(choices)}")
        return value
    for marker, check, expected in _KINDS:
        if marker in hint:
            converted = check(value)
            if converted is None:
                empty = " or null" if optional else ""
                raise ConfigError(f"{where}: expected {expected}{empty}")
            return converted
    raise ConfigError(f"{where}: no reader for a {hint} setting")  # a new field type


def _number(value):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _numbers(count: int, cast):
    def check(value):
        if not isinstance(value, (list, tuple)) or len(value) != count:
            return None
        items = [cast(v) for v in value]
        return None if any(v is None for v in items) else tuple(items)
    return check


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# (text in the type hint, converter returning None when the value does not fit, description)
_KINDS = (
    ("tuple[int, int, int]", _numbers(3, _int), "three integers [C, H, W]"),
    ("tuple[float, float]", _numbers(2, _number), "two numbers [B1, B2]"),
    ("bool", lambda v: v if isinstance(v, bool) else None, "true or false"),
    ("float | str", lambda v: v if isinstance(v, str) else _number(v), "a number or a word"),
    ("float", _number, "a finite number"),
    ("int", _int, "an integer"),
    ("str", lambda v: v if isinstance(v, str) else None, "text"),
)
