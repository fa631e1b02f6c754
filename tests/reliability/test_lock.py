"""Defect 5: one writer per run directory. A second process that would write a run already
being written is refused at once, with the run and the holding pid named; the lock goes when
its holder ends, however it ends.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from wganlab.base.lock import RunLock, RunLocked
from wganlab.errors import ConfigError

from .runs import child_env, count_loss_rows, finish, spawn, train_argv, wait_for

pytestmark = pytest.mark.slow  # each test starts a process

HOLD = """
import sys
from wganlab.base.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def holder(run) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], env=child_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_while_the_first_holds(tmp_path):
    run = tmp_path / "run"
    first = holder(run)
    try:
        with pytest.raises(RunLocked) as e:
            RunLock(run).acquire()
        assert isinstance(e.value, ConfigError)
        assert str(run) in str(e.value) and f"pid {first.pid}" in str(e.value)
    finally:
        first.stdin.close()
        first.wait(timeout=60)
    with RunLock(run):  # released at the holder's end
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    first = holder(run)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    with RunLock(run) as lock:
        assert (run / ".lock").read_text().strip() == str(os.getpid())
        assert lock.fd is not None


def test_two_trainers_on_one_run(tmp_path):
    """`train --resume` while another process trains the run: refused, nothing duplicated."""
    run = tmp_path / "run"
    first = spawn(train_argv("wgan-gp", run, 100_000, "--log-every", 1), tmp_path)
    try:
        wait_for(lambda: count_loss_rows(run) >= 2, 240, "2 logged steps", first)
        second = finish(spawn(train_argv("wgan-gp", run, 100_000, "--resume", "--log-every", 1,
                                         "--minutes", 0.05), tmp_path), timeout=240)
        assert second.returncode == ConfigError.exit_code, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(run) in lines[0] and f"pid {first.pid}" in lines[0]
    finally:
        first.send_signal(signal.SIGTERM)
        done = finish(first, timeout=120)
    assert done.returncode == 143, done.stderr
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
             if '"g_loss"' in x]
    assert steps == list(range(1, len(steps) + 1))  # one row per step, none twice
