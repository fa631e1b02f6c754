"""Checkpoints: plain dicts of tensors and plain values, written atomically, loaded as data.

Every load uses `torch.load(..., weights_only=True)`: a checkpoint can never run code. RNG
states are stored as tensors and lists so that no allow-list is needed.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError

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
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data_rng.set_state(state["data"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`.

    A crash or a full disk leaves the previous file intact and no partial file under `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, f"could not write {path}: {e.strerror or e}") from e
        raise
    _fsync_dir(path.parent)
    return path


def save(state: dict, path: str | Path) -> Path:
    return atomic_write(path, lambda f: torch.save(state, f))


def load(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint as data only; anything that is not plain tensors/values is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable wganlab checkpoint ({first[:200]})") from e
    if not isinstance(state, dict) or "generator" not in state:
        raise CheckpointError(f"{path}: not a wganlab checkpoint (no generator weights)")
    return state


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
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


def prune(run_dir: str | Path, keep_last: int) -> None:
    for old in list_checkpoints(run_dir)[keep_last:]:
        old.unlink(missing_ok=True)
