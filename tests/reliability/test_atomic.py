"""Promise 2: a crash while a checkpoint is written never costs the previous one.

Checkpoints are written to a temporary file, fsynced, then renamed; `--resume` takes the
newest checkpoint that loads and warns about the others; `--keep-last K` keeps K.
"""

import io
import json
import struct
import subprocess
import sys
import zipfile

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


def test_keep_every_saves_and_keeps_a_curves_checkpoints(tmp_path, cli):
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 7, "--keep-every", 3, "--keep-last", 1))
    assert code == 0, err
    assert steps_on_disk(run) == [3, 6, 7]  # 3 and 6 kept besides the newest
    # On resume the setting may change, and pruning follows the new one.
    code, _, err = cli("train", "--resume", "--out", run, "--steps", 9, "--keep-every", 2,
                       "--keep-last", 1)
    assert code == 0, err
    assert steps_on_disk(run) == [6, 8, 9]


def flip_tensor_bytes(path, member_suffix: str = "data/0", count: int = 4) -> None:
    """Flip bytes inside one tensor's stored data (not its zip headers): bit rot."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                     info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start, start + count):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_tensor_data_is_refused(tmp_path):
    """torch.load does not check the CRC-32s torch.save writes: damaged data would load as
    silently different weights, and a resume would continue from them."""
    path = tmp_path / "step-00000001.pt"
    checkpoint.save(small_state(1.0), path)
    flip_tensor_bytes(path)
    assert torch.load(path, weights_only=True)["step"] == 1  # torch itself takes it
    with pytest.raises(CheckpointError, match=r"step-00000001.pt: damaged: .*data/0"):
        checkpoint.load(path)


def test_resume_sets_a_bit_flipped_checkpoint_aside(tmp_path, cli):
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 4, "--checkpoint-every", 2))
    assert code == 0, err
    flip_tensor_bytes(checkpoint.checkpoint_path(run, 4))
    code, out, err = cli("train", "--resume", "--out", run, "--steps", 4)
    assert code == 0, err
    assert "step-00000002.pt at step 2" in out
    assert (run / "checkpoints" / "damaged" / "step-00000004.pt").is_file()


def test_resume_removes_what_killed_writers_left_and_nothing_else(tmp_path, cli):
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 2))
    assert code == 0, err
    left = [run / ".run.json.k3j_x9a2.tmp", run / "samples" / ".epoch-002.png.ab12cd34.tmp",
            run / "checkpoints" / ".step-00000004.pt.zz99yy88.tmp"]
    mine = [run / "notes.tmp", run / "samples" / ".hidden.tmp", run / "samples" / "x.png.tmp"]
    for path in left + mine:
        path.write_bytes(b"partial")
    code, _, err = cli("train", "--resume", "--out", run, "--steps", 3)
    assert code == 0, err
    assert not [p for p in left if p.exists()]
    assert all(p.read_bytes() == b"partial" for p in mine)


# Resuming rewrites metrics.jsonl without the rows after the checkpoint. The rewrite runs here
# in a process whose files may not grow past 300 bytes, so the write fails part-way.
REWRITE_WITH_A_SIZE_LIMIT = """
import resource, signal, sys
from wganlab.training.runtime import MetricsLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
try:
    MetricsLog(sys.argv[1], truncate_after_step=30)
except OSError as e:
    print("refused:", e)
"""


def test_a_failed_rewrite_of_the_metrics_keeps_every_row(tmp_path):
    path = tmp_path / "metrics.jsonl"
    text = "".join(json.dumps({"step": i, "g_loss": 0.25 * i}) + "\n" for i in range(1, 41))
    path.write_text(text)
    done = subprocess.run([sys.executable, "-c", REWRITE_WITH_A_SIZE_LIMIT, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "metrics.jsonl" in done.stdout
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
