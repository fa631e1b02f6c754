"""Files written so that a crash, a signal or a full disk never leaves a partial one, and so
that nothing of the user's is replaced by accident.

The one writer policy (`atomic_write`, used for every file wganlab writes):
- a new file, or a regular file, is replaced atomically (a temporary file beside it, fsynced,
  renamed); a device, socket, fifo or folder under the name is refused, never replaced;
- a symbolic link is refused, unless the caller says the user named it (`follow_link`), and
  then the write goes through it to its target, under the same rules;
- the temporary name is never longer than the final name (or 40 bytes), so any name that
  fits on a file system has a temporary that fits too;
- `~` is expanded; the filesystem root and system folders are refused as output folders.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from ..errors import ConfigError

# The names atomic_write's temporary files get: mkstemp's 8 random characters between them.
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
# A temporary of a short name may take this many bytes: every file system allows far more.
SHORT_NAME = 40
# Folders no output goes into: the root and the system's own (whole subtrees for these).
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                "/proc", "/sbin", "/sys", "/usr")
SYSTEM_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/run", "/srv", "/var")


class WriteRefused(ConfigError):
    """wganlab will not write here: a system folder, or a name that holds something other
    than a regular file (a device, a socket, a link the user did not name)."""


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


def system_folder(folder: str | Path) -> bool:
    """Whether `folder` (links resolved) is the root or a system folder no output belongs in."""
    where = os.path.realpath(os.path.expanduser(str(folder)))
    return where in SYSTEM_FOLDERS or any(
        where == tree or where.startswith(tree + "/") for tree in SYSTEM_TREES)


def refuse_system_folder(folder: str | Path, what: str) -> None:
    """WriteRefused when `folder` is the root or a system folder; `what` names the output."""
    if system_folder(folder):
        raise WriteRefused(f"{what}: {folder} is the filesystem root or a system folder "
                           f"({os.path.realpath(os.path.expanduser(str(folder)))}); wganlab "
                           "writes only into your own folders")


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a fifo"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def write_target(path: str | Path, follow_link: bool = False) -> Path:
    """The file a write of `path` replaces, after the policy's checks (see the module)."""
    path = Path(os.path.expanduser(str(path)))
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise OSError(e.errno, f"could not write {path}: {e.strerror or e}") from e
    if info is not None and stat.S_ISLNK(info.st_mode):
        if not follow_link:
            raise WriteRefused(f"{path}: is a symbolic link (to {os.readlink(path)}); wganlab "
                               "replaces only regular files it names itself: remove the link")
        return write_target(os.path.realpath(path))  # the link's target, checked the same way
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise WriteRefused(f"{path}: is {_kind(info.st_mode)}, not a regular file; not "
                           "replaced (give the path of a file)")
    refuse_system_folder(path.parent if str(path.parent) else Path("."), str(path))
    return path


def temporary_prefix(name: str) -> str:
    """'.NAME.' cut so that '.NAME.' + 8 random characters + '.tmp' is no longer than `name`
    (or SHORT_NAME bytes): a 255-byte name has a temporary that fits beside it."""
    budget = max(len(os.fsencode(name)), SHORT_NAME) - len("..") - 8 - len(".tmp")
    stem = name
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return f".{stem}."


def atomic_write(path: str | Path, write, follow_link: bool = False) -> Path:
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`.

    A crash or a full disk leaves the previous file intact and no partial file under `path`.
    follow_link: the user named `path`; if it is a symbolic link, write its target.
    Returns the path written (a link's target when followed).
    """
    path = write_target(path, follow_link)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp",
                                   dir=path.parent)
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
