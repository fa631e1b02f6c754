"""The files of a run directory, each read against its schema.

    read_config(path)     config.json -> Config: sections, fields and values checked
    read_run_info(path)   run.json -> dict: known keys typed (unknown ones kept)
    read_metrics(path)    metrics.jsonl -> rows; lines that are not rows skipped, one warning
    read_eval(path)       eval.json -> dict: a FID and typed provenance
    best_checkpoint(run)  the checkpoint of the lowest FID that --eval-every measured

An error is one line naming the file and the key or line (ConfigError for config.json,
DataError for the others). Keys a newer wganlab may add are kept, not refused: only the keys
this version reads are checked. Checkpoints are checked in base/checkpoint.py.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from . import config as C
from .base.textfile import parse_json, read_json, read_text
from .errors import CheckpointError, ConfigError, DataError

TOP_KEYS = ("preset", *C.SECTIONS)
REQUIRED = ("model", "train", "run")  # runs from before the speed section lack it
NON_FINITE = ("nan", "inf", "-inf", "NaN", "Infinity", "-Infinity")  # MetricsLog's spellings


class RunFileWarning(UserWarning):
    """Some lines of a run file were skipped (cut short by a crash, or not rows)."""


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _number(v) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, (int, float)) or (isinstance(v, str) and v in NON_FINITE)


def _text(v) -> bool:
    return isinstance(v, str)


def _or_null(check):
    return lambda v: v is None or check(v)


INT, NUMBER, TEXT = ("an integer >= 0", _int), ("a number", _number), ("text", _text)


def _optional(kind):
    return kind[0] + " or null", _or_null(kind[1])


RUN_INFO = {"version": TEXT, "steps_per_epoch": INT, "planned_steps": _optional(INT),
            "n_images": INT, "data_source": TEXT, "device": TEXT, "world_size": INT,
            "step_mode": TEXT, "eager_reason": _optional(TEXT), "init_from": _optional(TEXT)}
EVAL = {"fid": NUMBER, "step": _optional(INT), "train_seconds": _optional(NUMBER),
        "n_real": INT, "n_fake": INT, "seed": INT, "bootstrap": INT,
        "modes_covered": _optional(NUMBER), "run": TEXT, "preset": _optional(TEXT),
        "checkpoint": TEXT, "reference": TEXT, "evaluator": _optional(TEXT),
        "evaluator_sha256": _optional(TEXT), "weights": TEXT,
        **{k: _optional(NUMBER) for k in ("kid_mean", "kid_std", "precision", "recall",
                                          "density", "coverage", "class_kl_to_uniform",
                                          "mean_confidence", "fid_low", "fid_high",
                                          "evaluator_test_accuracy")}}
# A metrics row: these keys, where present, hold these kinds; every row has a step.
ROW = {"step": INT, "epoch": INT, "time": NUMBER, "eval": ("true", lambda v: v is True),
       "flag": TEXT, "hint": TEXT,
       **{k: NUMBER for k in ("g_loss", "d_loss", "d_real", "d_fake", "wasserstein", "gp",
                              "diversity", "fid", "kid_mean", "precision", "recall",
                              "coverage", "class_kl_to_uniform")}}


def _check(data, schema: dict, name: str, error) -> dict:
    if not isinstance(data, dict):
        raise error(f"{name}: expected a JSON object of settings; got {type(data).__name__}")
    for key, (kind, fits) in schema.items():
        if key in data and not fits(data[key]):
            raise error(f"{name}: {key} = {_short(data[key])}: expected {kind}")
    return data


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_config_dict(data, name: str) -> dict:
    """A run's config as config.json holds it: the sections as objects, nothing else at the
    top; ConfigError naming the key otherwise (an editor's config.json is not one)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: not a wganlab run config (a JSON {type(data).__name__}, "
                          "not an object with model, train and run)")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"{name}: not a wganlab run config (unknown key {unknown[0]!r}; a "
                          f"run's has {', '.join(TOP_KEYS)})")
    missing = [k for k in TOP_KEYS[1:] if not isinstance(data.get(k), dict)
               and (k in REQUIRED or k in data)]
    if missing:
        raise ConfigError(f"{name}: not a wganlab run config ({missing[0]} is missing or not "
                          "an object)")
    if not isinstance(data.get("preset", ""), str):
        raise ConfigError(f"{name}: preset = {_short(data['preset'])}: expected text")
    return data


def read_config_dict(path: str | Path) -> dict:
    """config.json as checked plain dicts (see check_config_dict)."""
    return check_config_dict(read_json(path, ConfigError), str(path))


def read_config(path: str | Path) -> C.Config:
    """config.json as a Config, every field checked like a flag; errors name the file."""
    data = read_config_dict(path)
    try:
        return C.validate(C.Config.from_dict(data))
    except (ValueError, TypeError) as e:  # ConfigError, and a value of the wrong kind
        raise ConfigError(f"{path}: not a usable run config ({str(e)[:200]})") from None


def read_run_info(path: str | Path) -> dict:
    """run.json, its known keys checked; {} when the run has none (older runs)."""
    path = Path(path)
    if not path.exists():
        return {}
    return _check(read_json(path, DataError), RUN_INFO, str(path), DataError)


def read_eval(path: str | Path) -> dict:
    """eval.json (from `wganlab evaluate`): a FID and its provenance, typed."""
    data = _check(read_json(path, DataError), EVAL, str(path), DataError)
    if "fid" not in data:
        raise DataError(f"{path}: no fid in it; run `wganlab evaluate` again")
    return data


def row_problem(row) -> str | None:
    """Why a decoded metrics line is not a row (None when it is one)."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    if "step" not in row:
        return "no step"
    for key, (kind, fits) in ROW.items():
        if key in row and not fits(row[key]):
            return f"{key} = {_short(row[key])} is not {kind}"
    if any(isinstance(v, (dict, list)) for v in row.values()):
        return "a nested value"
    return None


def metrics_lines(path: str | Path, warn: bool = True) -> list[tuple[str, dict]]:
    """(line, row) for every row of a metrics.jsonl; [] when it is missing. Lines that do
    not decode (cut short by a crash) or are not rows are skipped with one warning."""
    path = Path(path)
    if not path.exists():
        return []
    text = read_text(path, DataError, limit=1 << 34)  # a long run's log may be large
    rows, skipped = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = parse_json(line, str(path), DataError)
        except DataError:
            skipped.append((number, "not JSON"))
            continue
        problem = row_problem(row)
        if problem:
            skipped.append((number, problem))
        else:
            rows.append((line, row))
    if skipped and warn:
        first = f"line {skipped[0][0]}: {skipped[0][1]}"
        warnings.warn(f"{path}: skipped {len(skipped)} line(s) that are not metrics rows "
                      f"({first})", RunFileWarning, stacklevel=2)
    return rows


def read_metrics(path: str | Path, warn: bool = True) -> list[dict]:
    """Every row of a metrics.jsonl (training, evaluation and flag rows), in file order."""
    return [row for _, row in metrics_lines(path, warn)]


def best_evaluation(rows: list[dict]) -> dict | None:
    """The evaluation row (--eval-every) with the lowest finite FID, the earliest of equals;
    None before the first."""
    evals = [r for r in rows if r.get("eval") and isinstance(r.get("fid"), (int, float))
             and math.isfinite(r["fid"])]
    return min(evals, key=lambda r: r["fid"]) if evals else None


def best_checkpoint(run_dir: str | Path) -> Path:
    """RUN's checkpoint at the step of its lowest FID during training (`--checkpoint best`).
    Training keeps that checkpoint whatever --keep-last says. The FID was measured on the
    split it is chosen by, so it flatters the checkpoint: report a fresh `evaluate`."""
    from .base.checkpoint import checkpoint_path, list_checkpoints  # torch: only when asked

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise CheckpointError(f"--checkpoint best: {run_dir} is not a run directory (no "
                              "metrics.jsonl)")
    best = best_evaluation(read_metrics(run_dir / "metrics.jsonl"))
    if best is None:
        raise CheckpointError(f"--checkpoint best: {run_dir} has no evaluations; train with "
                              "--eval-every N to measure FID along the run")
    path = checkpoint_path(run_dir, best["step"])
    if not path.is_file():
        raise CheckpointError(f"--checkpoint best: {path} (FID {best['fid']:.2f} at step "
                              f"{best['step']}) is gone; the run kept "
                              f"{len(list_checkpoints(run_dir))} other checkpoint(s)")
    return path
