"""What the benchmark measures with: the machine, its load, FLOPs, and CPU peak memory."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def machine_info(devices: list[str]) -> dict:
    """CPU, cores, torch threads, versions, OMP_WAIT_POLICY, and the GPU when cuda is benched."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    if "cuda" in devices:
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                    gpu_capability=".".join(map(str, torch.cuda.get_device_capability())))
    return info


@contextlib.contextmanager
def quiet_profiler():
    """Silence what the profiler's native libraries print on their own (kineto's "USDT: ...
    profiler_start" lines, written straight to file descriptors 1 and 2, past Python), so
    the benchmark's output is its table alone. Python's own output is flushed first."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def cpu_step_peak_bytes(run) -> int:
    """Peak of the running total of bytes allocated minus freed while `run()` executes."""
    from torch.profiler import ProfilerActivity, profile

    with quiet_profiler(), profile(activities=[ProfilerActivity.CPU],
                                   profile_memory=True) as prof:
        run()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()
                    if e.self_cpu_memory_usage)
    live = peak = 0
    for _, change in events:
        live += change
        peak = max(peak, live)
    return peak


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: its backward hooks fail inside the
    penalty's autograd.grad on a leaf input (torch 2.13), and only the total is needed."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that counts only the total (see _GlobalOnly)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


def load_average() -> float | None:
    """The 1-minute load average, to 2 decimals; None where the OS has none."""
    # Other processes on the CPUs distort CPU timings (OpenMP threads spin-wait for
    # descheduled peers); the 1-minute load average says how busy the machine was.
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
