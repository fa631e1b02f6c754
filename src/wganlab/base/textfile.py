"""Small text files a user hands us, or a run holds, read the one careful way.

    read_text(path, what, error)    bounded, regular files and pipes only, strict UTF-8
    parse_json(text, path, error)   JSON whose errors say the line and column; a key given
                                    twice is refused (as TOML does), never "last one wins"

Each failure is `error` (a wganlab error class) with one line naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_BYTES = 16 << 20  # config and run files are kilobytes; /dev/zero or a log is not one


def read_text(path: str | Path, error: type[Exception], what: str = "",
              limit: int = MAX_BYTES) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark dropped).

    what: how the message names the file (default: the path). Never reads more than `limit`
    bytes: a device such as /dev/zero, or a huge file, is refused without filling memory.
    """
    path = Path(path)
    name = what or str(path)
    try:
        info = os.stat(path)
    except OSError as e:
        raise error(f"{name}: cannot read it ({e.strerror or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{name}: is a folder, not a file")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        raise error(f"{name}: is a device, not a file")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"{name}: cannot read it ({e.strerror or e})") from None
    if len(data) > limit:
        raise error(f"{name}: larger than {limit >> 20} MiB; not a settings or run file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise error(f"{name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}, "
                    f"line {line}); save it with the UTF-8 encoding") from None


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


class _Duplicate(ValueError):
    pass


def parse_json(text: str, name: str, error: type[Exception]):
    """The JSON value of `text`; errors name the file (`name`), line and column, or the key
    given twice."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise error(f"{name}: key {e.args[0]!r} is given twice; give each setting once") \
            from None
    except json.JSONDecodeError as e:
        raise error(f"{name}: not valid JSON at line {e.lineno}, column {e.colno} ({e.msg})") \
            from None
    except RecursionError:
        raise error(f"{name}: not valid JSON (nested too deeply)") from None


def read_json(path: str | Path, error: type[Exception], what: str = "",
              limit: int = MAX_BYTES):
    """read_text then parse_json."""
    return parse_json(read_text(path, error, what, limit), what or str(path), error)
