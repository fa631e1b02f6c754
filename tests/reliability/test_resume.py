"""Promise 1: a run stopped and resumed is the run that never stopped, bit for bit.

Each preset's run is stopped twice, by real processes that end: once mid-epoch (--steps 7),
then, resumed from there, at an epoch boundary; the last leg is resumed in this process. Every
step's losses and the final state (both networks, both optimizers, every RNG stream, fixed z,
counters) must equal a straight run's exactly.
"""

import json

import pytest

from wganlab.base import checkpoint

from .conftest import REFERENCE_STEPS
from .runs import (
    PER_EPOCH,
    assert_same_state,
    compare_rows,
    finish,
    loss_rows,
    spawn,
    state_at,
    steps_on_disk,
    train_argv,
    wait_for,
)

PRESETS = ("seed", "wgan-gp")
MID_EPOCH = 7


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """For each preset: a run dir trained by two processes, 0 -> 7 and 7 -> end of epoch 1.

    Both presets' processes run side by side (start-up is most of their time).
    """
    root = tmp_path_factory.mktemp("stopped")
    runs = {p: root / p for p in PRESETS}
    legs = [lambda p: train_argv(p, runs[p], MID_EPOCH),
            lambda p: train_argv(p, runs[p], PER_EPOCH[p], "--resume")]
    outputs = {p: [] for p in PRESETS}
    for leg in legs:
        procs = {p: spawn(leg(p), root) for p in PRESETS}
        for p, proc in procs.items():
            done = finish(proc)
            assert done.returncode == 0, f"{p}: {done.stderr}"
            outputs[p].append(done.stdout)
    return runs, outputs


@pytest.mark.slow  # four processes of a few seconds each, two at a time
@pytest.mark.parametrize("preset", PRESETS)
def test_stop_and_resume_equals_straight_run(preset, stopped, reference, cli):
    runs, outputs = stopped
    run, ref = runs[preset], reference(preset)
    per_epoch, end = PER_EPOCH[preset], REFERENCE_STEPS[preset]
    assert json.loads((run / "run.json").read_text())["steps_per_epoch"] == per_epoch
    assert MID_EPOCH % per_epoch != 0  # the first stop really is mid-epoch

    # The second process really resumed the first one's mid-epoch checkpoint.
    assert f"step-{MID_EPOCH:08d}.pt at step {MID_EPOCH}" in outputs[preset][1]
    assert steps_on_disk(run)[-1] == per_epoch

    # The last leg, from the epoch boundary to the reference's end.
    code, out, err = cli(*train_argv(preset, run, end, "--resume"))
    assert code == 0, err
    assert f"step-{per_epoch:08d}.pt at step {per_epoch}" in out

    compare_rows(loss_rows(run), loss_rows(ref))
    for step in (per_epoch, end):
        assert_same_state(state_at(run, step), state_at(ref, step))


def test_resume_compares_the_whole_state(reference):
    """The comparison above is not vacuous: a state one step apart differs."""
    ref = reference("wgan-gp")
    a, b = state_at(ref, 12), state_at(ref, 24)
    with pytest.raises(AssertionError):
        assert_same_state(a, b)
    b = dict(a, rng=dict(a["rng"], data=a["rng"]["data"].clone()))
    b["rng"]["data"][-1] ^= 1
    with pytest.raises(AssertionError, match="rng.data"):
        assert_same_state(b, a)


def test_checkpoint_holds_everything_a_resume_needs(reference):
    state = checkpoint.load(checkpoint.list_checkpoints(reference("wgan-gp"))[0])
    assert {"generator", "critic", "g_optimizer", "c_optimizer", "step", "epoch", "skipped",
            "rng", "fixed_z", "config", "version"} <= state.keys()
    assert {"torch", "data", "numpy", "python", "cuda"} <= state["rng"].keys()
    assert state["step"] == 24 and state["epoch"] == 2


def test_a_wait_that_times_out_stops_its_process(tmp_path):
    """The helpers' own promise: a test that gives up on a run of FOREVER steps ends it."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with pytest.raises(AssertionError, match="timed out"):
        wait_for(lambda: False, 0.1, "nothing", proc)
    assert proc.poll() is not None
