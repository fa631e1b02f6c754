"""Promise 11: a run of several processes (torchrun, DDP over gloo on the CPU) fails cleanly.

- SIGTERM to one rank (one machine preempted) stops every rank after the same step (they
  agree after each step); rank 0 saves it; the launcher exits non-zero.
- A rank killed with SIGKILL stops the others within seconds instead of leaving them waiting
  in a collective; the launcher exits non-zero, earlier checkpoints are intact, and the run
  resumes from the newest one (here in a single process: checkpoints resume at any world size).
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wganlab.base import checkpoint

from .runs import TINY, child_env, count_loss_rows, loss_rows, steps_on_disk, wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(run: Path, cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(free_port()), "-m", "wganlab", "train", "--preset", "wgan-gp",
           *TINY, "--device", "cpu", "--steps", "100000", "--log-every", "1",
           "--checkpoint-every", "2", "--out", str(run)]
    return subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def worker_of_rank(launcher: subprocess.Popen, rank: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                              text=True).stdout.split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker with RANK={rank} among {children}")


def started(run: Path, launcher: subprocess.Popen) -> None:
    # Five logged steps: past the first checkpoints (every 2 steps).
    wait_for(lambda: count_loss_rows(run) >= 5, 240, "5 logged steps", launcher)


def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    """As when one machine of several is preempted: only rank 1 is told."""
    run = tmp_path / "run"
    launcher = torchrun(run, tmp_path)
    started(run, launcher)
    logged = count_loss_rows(run)
    subprocess.run(["kill", "-TERM", str(worker_of_rank(launcher, 1))], check=True)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0  # a rank exited 143; torchrun reports it as a failure
    assert err.count("SIGTERM: finishing this step") >= 1
    # Rank 0 stopped too, after the same step, and saved it; had it gone on alone into the
    # next step's collective, it would have died there with a gloo error.
    assert "[rank0]:" not in err, err[-3000:]
    last = steps_on_disk(run)[-1]
    # Steps take milliseconds, so a few more may finish before the signal lands; none is lost
    # and the saved step is the last one logged.
    assert logged <= last == loss_rows(run)[-1]["step"]
    assert [r["step"] for r in loss_rows(run)] == list(range(1, last + 1))
    assert checkpoint.load(checkpoint.checkpoint_path(run, last))["step"] == last


def test_a_killed_rank_stops_the_run_and_it_resumes(tmp_path, cli):
    run = tmp_path / "run"
    launcher = torchrun(run, tmp_path)
    started(run, launcher)
    victim = worker_of_rank(launcher, 1)
    killed_at = time.monotonic()
    subprocess.run(["kill", "-KILL", str(victim)], check=True)
    launcher.communicate(timeout=120)  # no rank is left waiting for the dead one
    assert launcher.returncode != 0
    assert time.monotonic() - killed_at < 60

    saved = steps_on_disk(run)
    assert saved and not [p for p in (run / "checkpoints").iterdir() if p.suffix == ".tmp"]
    for step in saved:
        assert checkpoint.load(checkpoint.checkpoint_path(run, step))["step"] == step
    code, out, err = cli("train", "--resume", "--out", run, "--steps", saved[-1] + 2)
    assert code == 0, err
    assert f"at step {saved[-1]}" in out
    assert steps_on_disk(run)[-1] == saved[-1] + 2
