"""Files written so that a crash, a signal or a full disk never leaves a partial one."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path

# The names atomic_write's temporary files get: mkstemp's 8 random characters between them.
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_failure(e: BaseException) -> tuple[int, str] | None:
    """(errno, reason) when `e` is a failure to write; None for anything else (a bug).

    torch.save reports a failed write of its zip as a RuntimeError ("[enforce fail at
    inline_container.cc] unexpected pos"), with the writer's OSError, if any, as context.
    """
    seen = e
    while seen is not None:
        if isinstance(seen, OSError):
            return seen.errno or errno.EIO, str(seen.strerror or seen)
        seen = seen.__cause__ or seen.__context__
    if isinstance(e, RuntimeError):
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return errno.EIO, f"write failed ({first[:200]})"
    return None


def atomic_write(path: str | Path, write) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`.

    A crash or a full disk leaves the previous file intact and no partial file under `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, f"could not write {path}: {e.strerror or e}") from e
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        failure = _write_failure(e)
        if failure is not None:
            raise OSError(*failure[:1], f"could not write {path}: {failure[1]}") from e
        raise
    _fsync_dir(path.parent)
    return path


def write_json(path: str | Path, obj) -> Path:
    """`obj` as indented JSON, written atomically."""
    return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder`.

    Only for a folder whose lock the caller holds: then no other writer is mid-write there.
    """
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if TEMPORARY.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
