"""Promise 9: a full disk (ENOSPC) or a read-only folder (EACCES) while saving gives a clear
error naming the path, a non-zero exit, and leaves the earlier checkpoints intact.

The failures are injected at the write (tests run as root, for whom permissions are no bar).
"""

import errno
import io
import tempfile

import torch

from wganlab.base import checkpoint

from .runs import steps_on_disk, train_argv


def fail_second_checkpoint(run, raise_error):
    """Let the first checkpoint through; at the second, record the first's bytes and fail."""
    seen = {}

    def check(target_dir):
        if str(target_dir).endswith("checkpoints"):
            seen["calls"] = seen.get("calls", 0) + 1
            if seen["calls"] == 2:
                seen["before"] = checkpoint.checkpoint_path(run, 3).read_bytes()
                raise_error()

    return seen, check


def test_disk_full_while_saving(tmp_path, cli, monkeypatch):
    run = tmp_path / "run"
    real_save = torch.save

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device")

    seen, check = fail_second_checkpoint(run, full_disk)

    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[:1000])  # part of it fits, then the disk is full
        check(checkpoint.checkpoint_path(run, 0).parent)
        f.write(buffer.getvalue()[1000:])

    monkeypatch.setattr(torch, "save", save)
    code, _, err = cli(*train_argv("wgan-gp", run, 9, "--checkpoint-every", 3))
    assert_clean_failure(code, err, run, seen, "No space left on device")


def test_read_only_folder_while_saving(tmp_path, cli, monkeypatch):
    run = tmp_path / "run"
    real_mkstemp = tempfile.mkstemp

    def read_only():
        raise PermissionError(errno.EACCES, "Permission denied")

    seen, check = fail_second_checkpoint(run, read_only)

    def mkstemp(*args, dir=None, **kwargs):
        check(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, _, err = cli(*train_argv("wgan-gp", run, 9, "--checkpoint-every", 3))
    assert_clean_failure(code, err, run, seen, "Permission denied")


def assert_clean_failure(code, err, run, seen, reason):
    assert seen.get("calls") == 2, "the failure was never injected"
    assert code not in (0, None), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(checkpoint.checkpoint_path(run, 6)) in lines[0] and reason in lines[0], lines[0]
    # The earlier checkpoint is byte for byte what it was; nothing partial is left behind.
    assert steps_on_disk(run) == [3]
    assert checkpoint.checkpoint_path(run, 3).read_bytes() == seen["before"]
    assert checkpoint.load(checkpoint.checkpoint_path(run, 3))["step"] == 3
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
