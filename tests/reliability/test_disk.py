"""Promise 9: a full disk (ENOSPC) or a read-only folder (EACCES) while saving gives a clear
error naming the path, a non-zero exit, and leaves the earlier checkpoints intact.

The failures are injected at the write (tests run as root, for whom permissions are no bar).
"""

import errno
import io
import os
import tempfile
from pathlib import Path

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.base.files import atomic_write

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


class FillsUp:
    """A file whose disk fills after `room` bytes: write raises ENOSPC from then on."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_disk_full_inside_torch_save(tmp_path, cli, monkeypatch):
    """torch.save itself (no stand-in) meets the full disk in the middle of its zip: torch
    reports `[enforce fail at inline_container.cc] unexpected pos`, a RuntimeError."""
    run = tmp_path / "run"
    real_fdopen = os.fdopen
    seen, check = fail_second_checkpoint(run, lambda: None)

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        folder = Path(os.readlink(f"/proc/self/fd/{fd}")).parent
        check(folder)
        return FillsUp(file, 1000) if seen.get("calls") == 2 and "before" in seen else file

    monkeypatch.setattr(os, "fdopen", fdopen)
    code, _, err = cli(*train_argv("wgan-gp", run, 9, "--checkpoint-every", 3))
    assert_clean_failure(code, err, run, seen, "No space left on device")


def test_any_write_failure_names_the_path(tmp_path):
    """A writer's RuntimeError, with or without an OSError behind it, becomes one OSError."""
    def torch_like(f):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "
                               "704 vs 598") from None

    def bare(f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    for write, errno_, reason in ((torch_like, errno.ENOSPC, "No space left on device"),
                                  (bare, errno.EIO, "unexpected pos")):
        with pytest.raises(OSError) as e:
            atomic_write(target, write)
        assert e.value.errno == errno_ and str(target) in str(e.value), e.value
        assert reason in str(e.value) and "\n" not in str(e.value)
        assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
