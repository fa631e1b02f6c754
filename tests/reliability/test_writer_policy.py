"""Issue 21, the one writer policy (base/files.atomic_write, every file wganlab writes):
atomic replace over a regular file or nothing; never over a device, socket, fifo or folder,
nor through a link the user did not name; temporaries that fit wherever the final name fits;
`~` expanded; the root and system folders refused. Generated over kinds, names and folders."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.base.files import (
    SHORT_NAME,
    TEMPORARY,
    WriteRefused,
    atomic_write,
    system_folder,
    temporary_prefix,
)

FAST = dict(max_examples=25, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])
KINDS = ["missing", "regular", "fifo", "socket", "folder", "link-to-file", "dangling-link",
         "link-to-fifo"]


def make(kind: str, path, tmp_path):
    """Put a thing of `kind` at path; returns what must stay unchanged when refused."""
    target = tmp_path / f"target-{path.name}"
    if kind == "regular":
        path.write_bytes(b"theirs")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "folder":
        path.mkdir()
    elif kind == "link-to-file":
        target.write_bytes(b"theirs")
        path.symlink_to(target)
    elif kind == "dangling-link":
        path.symlink_to(target)
    elif kind == "link-to-fifo":
        os.mkfifo(target)
        path.symlink_to(target)
    return target


@settings(**FAST)
@given(kind=st.sampled_from(KINDS), named=st.booleans(),
       name=st.sampled_from(["grid.png", "report.html", "m.safetensors", "metrics.jsonl"]))
def test_replaces_only_regular_files_and_named_links(kind, named, name):
    # A short folder of its own per example: a socket's path is limited to 107 bytes.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="wp") as folder:
        check_one(kind, named, Path(folder) / name, Path(folder))


def check_one(kind, named, path, tmp_path):
    target = make(kind, path, tmp_path)
    before = os.lstat(path) if kind != "missing" else None
    allowed = kind in ("missing", "regular") or (named and kind in ("link-to-file",
                                                                     "dangling-link"))
    if not allowed:
        with pytest.raises(WriteRefused, match=path.name):
            atomic_write(path, lambda f: f.write(b"ours"), follow_link=named)
        after = os.lstat(path)
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
        assert not target.is_file() or target.read_bytes() == b"theirs"
    else:
        written = atomic_write(path, lambda f: f.write(b"ours"), follow_link=named)
        assert path.read_bytes() == b"ours"
        if kind in ("link-to-file", "dangling-link"):  # written through; the link stays
            assert path.is_symlink() and written == target and target.read_bytes() == b"ours"
    assert not [p for p in tmp_path.iterdir() if TEMPORARY.match(p.name)]


def test_dev_null_is_never_replaced():
    with pytest.raises(WriteRefused, match="character device"):
        atomic_write("/dev/null", lambda f: f.write(b"png"), follow_link=True)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# Names of 1 to 255 bytes, with multi-byte characters: the limit is in bytes.
NAMES = st.lists(st.sampled_from(["a", "Z", "_", "-", ".", "é", "漢", "🙂"]), min_size=1,
                 max_size=255).map("".join).filter(
    lambda s: len(os.fsencode(s)) <= 255 and s not in (".", "..") and not s.startswith("."))


@settings(**FAST)
@given(name=NAMES)
def test_a_name_that_fits_has_a_temporary_that_fits(name, tmp_path):
    prefix = temporary_prefix(name)
    longest = len(os.fsencode(prefix)) + 8 + len(".tmp")
    assert longest <= max(len(os.fsencode(name)), SHORT_NAME)
    assert TEMPORARY.match(prefix + "abcd_123.tmp")
    atomic_write(tmp_path / name, lambda f: f.write(b"x"))  # 249 bytes was "too long"
    assert (tmp_path / name).read_bytes() == b"x"


def test_a_legal_249_byte_name(tmp_path):
    path = tmp_path / ("n" * 245 + ".png")
    atomic_write(path, lambda f: f.write(b"png"))
    assert path.read_bytes() == b"png"


SYSTEM = ["/", "/bin", "/etc", "/usr", "/usr/lib", "/dev", "/proc", "/sys", "/var", "/boot",
          "/etc/ssh", "/sbin", "/home"]


@settings(max_examples=len(SYSTEM), deadline=None)
@given(folder=st.sampled_from(SYSTEM), name=st.sampled_from(["grid.png", "report.html",
                                                             "model.safetensors"]))
def test_system_folders_are_refused(folder, name):
    assert system_folder(folder)
    with pytest.raises(WriteRefused, match="system folder"):
        atomic_write(os.path.join(folder, name), lambda f: f.write(b"x"))


def test_own_folders_are_not_system_folders(tmp_path):
    assert not system_folder(tmp_path) and not system_folder(os.path.expanduser("~"))


def test_tilde_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    atomic_write("~/grids/a.png", lambda f: f.write(b"x"))
    assert (tmp_path / "home" / "grids" / "a.png").read_bytes() == b"x"
    assert not (tmp_path / "~").exists()
