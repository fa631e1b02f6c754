"""Device choice, CPU threads and seeding: shared by training, generation and measuring."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..errors import ConfigError


def pick_device(name: str) -> torch.device:
    """The device a name means; "auto" picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"--device: {name!r} is not a device (auto, cpu, cuda, cuda:N, mps)") \
            from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device: cuda asked for, but PyTorch sees no CUDA device")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally switch on deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def fit_threads() -> int:
    """Use the CPUs this process may run on, unless OMP_NUM_THREADS says otherwise.

    PyTorch counts the machine's cores; in a container limited to fewer, that oversubscribes.
    """
    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        allowed = len(os.sched_getaffinity(0))
        if torch.get_num_threads() > allowed:
            torch.set_num_threads(allowed)
    return torch.get_num_threads()


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two devices are one: type and index compared, an index-less device meaning
    the current one (torch.cuda.current_device() for cuda; index 0 for other types).

    Tensors report their full device (`cuda:0`) while a run's device may be plain `cuda`;
    comparing the two torch.device objects with == calls those different.
    """
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.index == b.index:
        return True
    return _index(a) == _index(b)


def _index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if device.type == "cuda" else 0
