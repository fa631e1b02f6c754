"""One writer per run directory: an exclusive lock on RUN/.lock while a process writes it.

The lock is flock(2) on an open file, so the kernel drops it when the process ends, however
it ends (even SIGKILL): there is never a stale lock to clean up. The file holds the pid of
the process that took it, for the message the next writer gets. It is advisory: it keeps
wganlab processes apart, not other programs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import warnings
from pathlib import Path

from ..errors import ConfigError

LOCK_NAME = ".lock"


class RunLocked(ConfigError):
    """Another process is writing this run directory."""


class RunLock:
    """`with RunLock(run_dir):` holds the run for this process; released on exit or at the
    end of the process."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        if self.fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OSError(e.errno, f"could not write {self.path}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                # A file system without locks (some network mounts): go on, unprotected.
                os.close(fd)
                warnings.warn(f"{self.path}: cannot lock the run ({e.strerror or e}); "
                              "make sure no other process writes it", stacklevel=2)
                return self
            holder = _holder(fd)
            os.close(fd)
            raise RunLocked(f"--out: {self.run_dir} is being written by another wganlab "
                            f"process ({holder}); wait for it to end, or choose another "
                            "--out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    """'pid N' from the lock file (the holder writes it right after locking)."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"
