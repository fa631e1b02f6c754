"""Checkpoints: plain dicts of tensors and plain values, written atomically, loaded as data.

Every load uses `torch.load(..., weights_only=True)`: a checkpoint can never run code. RNG
states are stored as tensors and lists so that no allow-list is needed. Before torch sees a
file, its container and pickle are checked (container.check_pickle): only torch's own zip
layout whose pickle names the few globals our checkpoints use is read, even where torch's
allow-list was widened (`torch.serialization.add_safe_globals`) or weights-only loading was
turned off.
"""

from __future__ import annotations

import pickle
import random
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, NonFiniteError
from .container import check_pickle as check_pickle  # the check before every load
from .files import atomic_write

NAME = re.compile(r"^step-(\d{8})\.pt$")


def rng_state(data_rng: torch.Generator) -> dict:
    """Every random stream a run draws from, as tensors and plain lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": data_rng.get_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_state(state: dict, data_rng: torch.Generator) -> None:
    """Put back every random stream rng_state saved."""
    # RNG states are CPU byte tensors, whatever map_location moved the checkpoint to.
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    data_rng.set_state(state["data"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def non_finite(state, prefix: str = "") -> list[str]:
    """Keys of the floating-point tensors in a nested dict/list that hold NaN or Inf."""
    if isinstance(state, torch.Tensor):
        bad = state.is_floating_point() and not bool(torch.isfinite(state).all())
        return [prefix or "tensor"] if bad else []
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    else:
        return []
    found = []
    for key, value in items:
        found += non_finite(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def save(state: dict, path: str | Path) -> Path:
    """Write a checkpoint atomically; one holding NaN or Inf anywhere is never written."""
    bad = non_finite(state)
    if bad:
        raise NonFiniteError(f"{path}: not written: non-finite values in {', '.join(bad[:3])}"
                             + (f" and {len(bad) - 3} more" if len(bad) > 3 else ""))
    return atomic_write(path, lambda f: torch.save(state, f))


def load(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint as data only; anything that is not plain tensors/values is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    check_pickle(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable wganlab checkpoint ({first[:200]})") from e
    if not isinstance(state, dict) or "generator" not in state:
        raise CheckpointError(f"{path}: not a wganlab checkpoint (no generator weights)")
    check_entries(state, path)
    return state


# What each entry of a checkpoint holds, where present (older checkpoints lack some).
ENTRIES = {"generator": (dict, "weights"), "critic": (dict, "weights"),
           "g_optimizer": (dict, "an optimizer state"), "c_optimizer": (dict, "an optimizer state"),
           "rng": (dict, "random states"), "config": (dict, "a config"),
           "ema": (dict, "an averaged generator"), "fixed_z": (torch.Tensor, "a tensor"),
           "step": (int, "a count"), "epoch": (int, "a count"), "skipped": (int, "a count"),
           "elapsed": ((int, float), "seconds"), "version": (str, "a version")}


def check_entries(state: dict, path: str | Path) -> None:
    """CheckpointError naming the first entry of the wrong kind (a count that is negative or
    not an integer, weights that are not tensors, ...)."""
    for key, (kind, what) in ENTRIES.items():
        value = state.get(key)
        if key not in state or (isinstance(value, kind) and not isinstance(value, bool)
                                and not (kind is int and value < 0)):
            continue
        raise CheckpointError(f"{path}: its {key} entry is not {what} "
                              f"({type(value).__name__}); the file is damaged or not ours")
    for key in ("generator", "critic"):
        bad = [k for k, v in state.get(key, {}).items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{path}: {key}.{bad[0]} is not a tensor; the file is "
                                  "damaged or not ours")
    if "ema" in state and not isinstance(state["ema"].get("averaged"), dict):
        raise CheckpointError(f"{path}: its ema entry holds no averaged weights")


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """RUN/checkpoints/step-NNNNNNNN.pt: names sort by step."""
    return Path(run_dir) / "checkpoints" / f"step-{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, newest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if NAME.match(p.name)]
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)), reverse=True)


def latest_valid(run_dir: str | Path, map_location="cpu") -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; corrupt ones are skipped with a warning."""
    for path in list_checkpoints(run_dir):
        try:
            return path, load(path, map_location)
        except CheckpointError as e:
            warnings.warn(f"skipping corrupt checkpoint: {e}", stacklevel=2)
    return None


def prune(run_dir: str | Path, keep_last: int, keep_every: int | None = None,
          keep: tuple[int, ...] = ()) -> None:
    """Keep the newest keep_last checkpoints, those at a multiple of keep_every steps and
    those at the steps in `keep` (the best evaluation's). (Temporary files of a killed
    writer are removed when the next process takes the run: training.loop._prepare_run_dir.)"""
    for old in list_checkpoints(run_dir)[keep_last:]:
        step = int(NAME.match(old.name).group(1))
        if not (keep_every and step % keep_every == 0) and step not in keep:
            old.unlink(missing_ok=True)
