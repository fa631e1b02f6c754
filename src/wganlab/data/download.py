"""Download one file from a list of mirrors, verified by SHA-256, written atomically.

A file only ever appears under its final name complete and verified: it is streamed into a
temporary file in the same folder, fsynced, checked, then renamed with os.replace.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DataError

TIMEOUT_S = 30.0  # per connection attempt and per read; a stalled mirror should not hang a run
CHUNK = 1 << 20
BAR_MIN_BYTES = 1 << 20  # smaller files finish before a bar would be worth reading
ALLOWED_SCHEMES = ("http://", "https://", "file://")


def mirror_bases(default: tuple[str, ...]) -> tuple[str, ...]:
    """The base URLs to try: $WGANLAB_MIRROR (one base, for tests and private mirrors) or ours."""
    override = os.environ.get("WGANLAB_MIRROR")
    return (override,) if override else default


def join_url(base: str, filename: str) -> str:
    """base/filename with exactly one slash between them."""
    return base.rstrip("/") + "/" + filename


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fetch(url: str, dest: Path, sha256: str, timeout: float = TIMEOUT_S) -> Path:
    """Download url to dest if its SHA-256 matches; otherwise leave nothing under dest."""
    if not url.startswith(ALLOWED_SCHEMES):
        raise DataError(f"{url}: only http, https and file URLs are allowed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name,
                       leave=False, disable=None if total >= BAR_MIN_BYTES else True)
            with bar:
                while chunk := resp.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != sha256.lower():
            raise DataError(f"SHA-256 mismatch: expected {sha256.lower()}, got {got}")
        os.replace(tmp_name, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        # Interrupted, failed or mismatching: the partial file must not survive.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return dest


def fetch_from_mirrors(bases: tuple[str, ...], filename: str, dest: Path,
                       sha256: str | None) -> str:
    """Try each mirror in turn; return the URL that worked or raise DataError listing all."""
    if not sha256:
        # Never download what we cannot verify.
        raise DataError(f"{filename}: no SHA-256 known, refusing to download it unverified")
    failures = []
    for base in bases:
        url = join_url(base, filename)
        try:
            fetch(url, dest, sha256)
            return url
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"{url}: {e}")
    raise DataError("; ".join(failures))
