"""Helpers for the reliability tests: tiny runs, in this process or as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tiny import TINY, train_argv  # noqa: F401 (the shared tiny run, re-exported)
from wganlab.base import checkpoint

# Generator steps per epoch of the 1024 synthetic images at batch 16: 64 batches, shared by
# the seed preset's single update and split into n_critic = 5 critic batches by wgan-gp.
PER_EPOCH = {"seed": 64, "wgan-gp": 12}
# Entries of a metrics row that are not a function of the training state.
UNTIMED = {"time"}


def child_env(**extra: str) -> dict:
    # One thread: on 2 shared cores, OpenMP's spinning threads make a tiny run ~10x slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    env.update(extra)
    return env


def spawn(argv: list[str], cwd: Path, python_code: str | None = None,
          **env: str) -> subprocess.Popen:
    """`python -m wganlab ARGV` (or `python -c CODE ARGV`) as a separate process."""
    head = ["-c", python_code] if python_code else ["-m", "wganlab"]
    return subprocess.Popen([sys.executable, *head, *argv], cwd=cwd, env=child_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)


TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_signals() -> None:
    """In the child: SIGINT, SIGTERM and SIGHUP as a terminal gives them, even when the tests
    themselves were started with them ignored (a background job of a script ignores SIGINT,
    `nohup` SIGHUP), which a child inherits."""
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def all_rows(run: Path) -> list[dict]:
    path = Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_rows(run: Path) -> list[dict]:
    """The training rows (one per step), without wall time."""
    return [{k: v for k, v in row.items() if k not in UNTIMED}
            for row in all_rows(run) if "g_loss" in row]


def compare_rows(got: list[dict], want: list[dict]) -> None:
    """Every value of every step equal, bit for bit (floats went through JSON's repr).

    `diversity` is logged every --log-every steps only, so it is compared where both have it.
    """
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want):
        da, db = a.get("diversity"), b.get("diversity")
        a = {k: v for k, v in a.items() if k != "diversity"}
        b = {k: v for k, v in b.items() if k != "diversity"}
        assert a == b, f"step {a['step']} differs: " + str(
            {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)})
        if da is not None and db is not None:
            assert da == db, f"step {a['step']}: diversity {da} != {db}"


def steps_on_disk(run: Path) -> list[int]:
    return sorted(int(p.name[5:13]) for p in checkpoint.list_checkpoints(run))


def state_at(run: Path, step: int) -> dict:
    return checkpoint.load(checkpoint.checkpoint_path(run, step))


# Entries that legitimately differ between a straight and a resumed run.
NOT_STATE = {"elapsed", "config", "version"}


def assert_same_state(got: dict, want: dict) -> None:
    """Networks, optimizers, RNG streams, fixed z and counters equal, tensors bit for bit."""
    keys = want.keys() - NOT_STATE
    assert got.keys() - NOT_STATE == keys
    for key in sorted(keys):
        _assert_same(got[key], want[key], key)


def _assert_same(got, want, where: str) -> None:
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.dtype == want.dtype, where
        assert torch.equal(got, want), f"{where}: tensors differ"
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            _assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def stop_and_resume(cli, root: Path, end: int, *flags, preset: str = "wgan-gp",
                    stop: int = 7) -> tuple[Path, dict]:
    """Train `preset` straight to `end`, and again stopped at `stop` (mid-epoch) then resumed
    to `end`; assert both give the same metrics rows and final state. Returns the straight
    run and its final state, for the caller's own checks that the comparison bites."""
    straight, stopped = root / "straight", root / "stopped"
    code, _, err = cli(*train_argv(preset, straight, end, *flags))
    assert code == 0, err
    code, _, err = cli(*train_argv(preset, stopped, stop, *flags))
    assert code == 0, err
    code, out, err = cli(*train_argv(preset, stopped, end, "--resume"))
    assert code == 0, err
    assert f"step-{stop:08d}.pt at step {stop}" in out
    compare_rows(loss_rows(stopped), loss_rows(straight))
    want = state_at(straight, end)
    assert_same_state(state_at(stopped, end), want)
    return straight, want


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll until predicate() is truthy; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}:\n{err}")
        time.sleep(0.02)
    if proc is not None:  # a run of FOREVER steps must not outlive the test it failed
        proc.kill()
        proc.communicate()
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count_loss_rows(run: Path) -> int:
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        return 0
    return sum('"g_loss"' in line for line in path.read_text().splitlines())
