"""Promise 3: SIGINT / SIGTERM finish the step, save, exit 130 / 143; a second SIGINT exits now.

Each test runs `python -m wganlab train` as a real process and signals it once it has logged a
few steps (--log-every 1 writes a metrics row per step).
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from wganlab.base import checkpoint

from .conftest import REFERENCE_STEPS
from .runs import (
    assert_same_state,
    child_env,
    compare_rows,
    count_loss_rows,
    default_signals,
    finish,
    loss_rows,
    spawn,
    state_at,
    steps_on_disk,
    train_argv,
    wait_for,
)

FOREVER = 100_000  # steps: the run only ends by the signal
pytestmark = pytest.mark.slow  # each test starts a process (a few seconds of imports)


def start_and_signal(tmp_path, sig):
    run = tmp_path / "run"
    proc = spawn(train_argv("wgan-gp", run, FOREVER, "--log-every", 1), tmp_path)
    wait_for(lambda: count_loss_rows(run) >= 3, 240, "3 logged steps", proc)
    logged = count_loss_rows(run)
    proc.send_signal(sig)
    return run, logged, finish(proc, timeout=120)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                       (signal.SIGHUP, 129)])
def test_signal_saves_after_the_current_step(tmp_path, sig, code, reference, cli):
    run, logged, done = start_and_signal(tmp_path, sig)
    assert done.returncode == code, done.stderr
    assert f"{sig.name}: finishing this step" in done.stderr
    assert "Traceback" not in done.stderr

    # The step running when the signal came is finished and saved; no further step starts.
    last = steps_on_disk(run)[-1]
    assert logged <= last <= logged + 1
    assert [r["step"] for r in loss_rows(run)] == list(range(1, last + 1))
    assert checkpoint.load(checkpoint.checkpoint_path(run, last))["step"] == last

    # And the run resumes from there as if it had never stopped (here with --log-every 10).
    end = REFERENCE_STEPS["wgan-gp"]
    assert last < end
    code, out, err = cli(*train_argv("wgan-gp", run, end, "--resume"))
    assert code == 0, err
    compare_rows(loss_rows(run), loss_rows(reference("wgan-gp")))
    assert_same_state(state_at(run, end), state_at(reference("wgan-gp"), end))


def test_second_sigint_stops_at_once(tmp_path):
    run = tmp_path / "run"
    proc = spawn(train_argv("wgan-gp", run, FOREVER, "--log-every", 1), tmp_path)
    acknowledged, lines = threading.Event(), []

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "finishing this step" in line:
                acknowledged.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    wait_for(lambda: count_loss_rows(run) >= 3, 240, "3 logged steps", proc)
    proc.send_signal(signal.SIGINT)
    assert acknowledged.wait(60), "the first SIGINT was not acknowledged"
    # The first SIGINT's graceful path (finish the step, save, draw the plots) takes far
    # longer than this; the second interrupts it.
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    reader.join(10)
    stdout = proc.stdout.read()
    err = "".join(lines)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "Run directory" not in stdout  # the graceful path did not run to its end
    # Whatever the interruption cut short, no partial file is left and every checkpoint loads.
    folder = run / "checkpoints"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    for path in checkpoint.list_checkpoints(run):
        checkpoint.load(path)


class CtrlCDuringImport:
    """A meta-path finder that presses Ctrl-C when the CLI module starts importing, then lets
    the import go on: as a user's Ctrl-C lands while PyTorch loads (seconds)."""

    def __init__(self, swallow: bool):
        self.swallow = swallow  # some libraries' catch-alls eat a KeyboardInterrupt

    def find_spec(self, name, path=None, target=None):
        if name == "wganlab.cli.main":
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here
            except KeyboardInterrupt:
                if not self.swallow:
                    raise
        return None


def ignoring_sigint() -> None:
    default_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def python_sigint():
    """SIGINT as Python sets it up in a terminal, whatever this test process inherited (a
    background job or `nohup` starts it ignored); put back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("swallow", [False, True])
def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys, swallow,
                                                     python_sigint):
    from wganlab.__main__ import run

    for name in [m for m in sys.modules if m.startswith("wganlab.cli")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [CtrlCDuringImport(swallow), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["wganlab", "summary"])
    assert run() == 130
    err = capsys.readouterr().err
    assert err.strip() == "wganlab: interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigint_ignored_at_start_stays_ignored(tmp_path):
    """As for a script's background job (`wganlab train ... &`): the shell ignores SIGINT for
    it, Python keeps that, and so does the run; SIGTERM still stops it cleanly."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "wganlab",
                             *train_argv("wgan-gp", run, FOREVER, "--log-every", 1)],
                            cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignoring_sigint)
    time.sleep(0.5)  # while it starts
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: count_loss_rows(run) >= 3, 240, "3 logged steps", proc)
    proc.send_signal(signal.SIGINT)
    seen = count_loss_rows(run)
    wait_for(lambda: count_loss_rows(run) >= seen + 3, 240, "3 more steps", proc)
    proc.send_signal(signal.SIGTERM)
    done = finish(proc, timeout=120)
    assert done.returncode == 143, done.stderr
    assert "SIGINT" not in done.stderr and "interrupted" not in done.stderr
