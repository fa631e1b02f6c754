"""Promise 2: a crash while a checkpoint is written never costs the previous one.

Checkpoints are written to a temporary file, fsynced, then renamed; `--resume` takes the
newest checkpoint that loads and warns about the others; `--keep-last K` keeps K.
"""

import io

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.errors import CheckpointError

from .runs import finish, spawn, state_at, steps_on_disk, train_argv, wait_for


def small_state(value: float) -> dict:
    return {"generator": {"w": torch.full((64, 64), value)}, "step": int(value)}


def half_then_crash(real_save):
    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        raise RuntimeError("crashed half-way through the write")

    return save


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "step-00000001.pt"
    checkpoint.save(small_state(1.0), path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", half_then_crash(torch.save))
    # A writer's RuntimeError is a failed write: one OSError naming the file.
    with pytest.raises(OSError, match="step-00000001.pt: write failed .*half-way"):
        checkpoint.save(small_state(2.0), path)
    with pytest.raises(OSError, match="half-way"):
        checkpoint.save(small_state(3.0), tmp_path / "checkpoints" / "step-00000003.pt")
    # The old file is untouched, the new name never appeared, no temporary file is left.
    assert path.read_bytes() == before
    assert torch.equal(checkpoint.load(path)["generator"]["w"], torch.full((64, 64), 1.0))
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_truncated_checkpoint_is_refused_clearly(tmp_path):
    path = tmp_path / "step-00000001.pt"
    checkpoint.save(small_state(1.0), path)
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="step-00000001.pt"):
            checkpoint.load(path)


# A real training process whose second checkpoint write stops half-way and waits to be killed.
HANG_IN_SECOND_SAVE = """
import io, sys, time, torch
real_save, calls = torch.save, []
def save(obj, f, *args, **kwargs):
    calls.append(1)
    if len(calls) < 2:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    f.flush()
    print("HALF-WRITTEN", flush=True)
    time.sleep(600)
torch.save = save
from wganlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_during_a_write_then_resume(tmp_path, cli):
    run = tmp_path / "run"
    proc = spawn(train_argv("wgan-gp", run, 10, "--checkpoint-every", 3), tmp_path,
                 python_code=HANG_IN_SECOND_SAVE)
    wait_for(lambda: proc.stdout.readline().startswith("HALF-WRITTEN"), 240,
             "the second checkpoint write", proc)
    proc.kill()  # SIGKILL: no handler, no cleanup
    finish(proc)

    folder = run / "checkpoints"
    leftovers = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # killed mid-write
    assert steps_on_disk(run) == [3]  # nothing truncated under a checkpoint's name
    assert state_at(run, 3)["step"] == 3

    code, out, err = cli("train", "--resume", "--out", run, "--steps", 6)
    assert code == 0, err
    assert "step-00000003.pt at step 3" in out
    assert steps_on_disk(run) == [3, 6]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # cleaned up


def test_resume_skips_a_corrupt_checkpoint_and_keep_last(tmp_path, cli):
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 6, "--checkpoint-every", 2,
                                   "--keep-last", 2))
    assert code == 0, err
    assert steps_on_disk(run) == [4, 6]  # --keep-last 2

    newest = checkpoint.checkpoint_path(run, 6)
    newest.write_bytes(newest.read_bytes()[:1000])  # damaged on disk
    code, out, err = cli("train", "--resume", "--out", run, "--steps", 8, "--keep-last", 3)
    assert code == 0, err
    assert "step-00000006" in out + err  # the damaged checkpoint is named, and kept aside
    assert "step-00000004.pt at step 4" in out
    assert steps_on_disk(run) == [4, 6, 8]  # the damaged file was replaced by a good one
    assert state_at(run, 6)["step"] == 6
