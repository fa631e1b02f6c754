"""What a checkpoint file must look like before torch reads it: torch's zip, checked whole.

torch.load reads a file as a zip archive only when its first four bytes are a zip local
header; anything else it unpickles as the legacy format. Python's zipfile looks at the other
end (the central directory at the end of the file), so "is a zip" by zipfile's sniff says
nothing about what torch will read: a legacy pickle followed by a small zip passes the
sniff. And torch's zip reader finds members case-insensitively, taking the folder name from
the first member. So we accept only the layout torch.save writes, checked from both ends:

- the file starts with a local header and the first member lies at offset 0;
- it ends with the end-of-central-directory record, with no comment after it;
- every member sits in one top-level folder, under a name torch.save writes, stored
  uncompressed as torch.save stores it, and no two names differ only in case;
- the one pickle, FOLDER/data.pkl, names only the globals our checkpoints use;
- every member matches the CRC-32 stored with it (torch does not check them on load).
"""

from __future__ import annotations

import pickletools
import re
import struct
import zipfile
import zlib
from pathlib import Path

from ..errors import CheckpointError

LOCAL_HEADER = b"PK\x03\x04"
END_RECORD = b"PK\x05\x06"
END_RECORD_SIZE = 22  # without a comment
# The members torch.save writes inside its folder (torch 2.x): the pickle, format records,
# and one raw storage per tensor.
MEMBERS = re.compile(r"^(data\.pkl|byteorder|version|\.format_version|\.storage_alignment|"
                     r"\.data/version|\.data/serialization_id|data/\d+)$")
# The callables a checkpoint of ours may name (torch.save writes pickle protocol 2, which
# names them with GLOBAL): plain containers and values, the tensor rebuilders, storages.
SAFE_GLOBALS = {
    "collections OrderedDict", "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_parameter", "torch Size", "torch device", "_codecs encode",
} | {
    f"torch {kind}Storage" for kind in (
        "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")}
# Opcodes that build objects from classes without naming them through GLOBAL.
UNSAFE_OPCODES = {"STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"}
# zipfile fails on damaged archives in several ways (fuzzing found UnicodeDecodeError in a
# member name, struct.error in a short header, zlib.error in a compressed member).
ZIP_FAILURES = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError,
                struct.error, zlib.error)
MAX_PICKLE_BYTES = 64 * 2**20  # the pickle holds structure only; tensor data lies beside it


def check_pickle(path: Path) -> None:
    """Refuse anything but torch's zip layout whose pickle calls only our few globals.

    Reads bytes and opcodes; executes nothing. Independent of torch's allow-list and of
    environment variables.
    """
    path = Path(path)
    _check_ends(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickle_info = _check_members(path, archive)
            if pickle_info.file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{path}: {pickle_info.filename} is too large for a "
                                      f"checkpoint's pickle ({pickle_info.file_size} bytes)")
            with archive.open(pickle_info) as f:
                data = f.read(MAX_PICKLE_BYTES + 1)
            _check_crcs(path, archive)
    except CheckpointError:
        raise  # already says what is wrong (a ValueError, like some zip failures)
    except ZIP_FAILURES as e:
        raise CheckpointError(f"{path}: not a loadable wganlab checkpoint "
                              f"({type(e).__name__}: {e})") from e
    _check_opcodes(path, pickle_info.filename, data)


def _check_ends(path: Path) -> None:
    """The first bytes are what makes torch read a zip; the last must be the zip's end."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(LOCAL_HEADER))
            size = f.seek(0, 2)
            f.seek(max(0, size - END_RECORD_SIZE))
            tail = f.read(END_RECORD_SIZE)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from e
    if head != LOCAL_HEADER:
        raise CheckpointError(f"{path}: not a wganlab checkpoint (not a torch zip archive: "
                              "legacy-format torch files and plain pickles are refused)")
    if len(tail) < END_RECORD_SIZE or tail[:4] != END_RECORD or tail[-2:] != b"\0\0":
        raise CheckpointError(f"{path}: not a wganlab checkpoint (not a torch zip archive: "
                              "bytes after the zip's end record)")


def _check_members(path: Path, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """One folder, torch's member names only, unique even ignoring case; returns data.pkl."""
    infos = archive.infolist()
    if not infos or min(i.header_offset for i in infos) != 0:
        raise CheckpointError(f"{path}: not a wganlab checkpoint (not a torch zip archive: "
                              "the first member does not start the file)")
    folder = infos[0].filename.split("/", 1)[0]
    lower = set()
    for info in infos:
        inside = info.filename[len(folder) + 1:]
        if not info.filename.startswith(folder + "/") or not MEMBERS.match(inside):
            raise CheckpointError(f"{path}: not a wganlab checkpoint (unexpected archive "
                                  f"member {info.filename!r})")
        if info.compress_type != zipfile.ZIP_STORED:
            # torch.save stores members uncompressed; a compressed one could unpack to far
            # more than the file holds when its checksum is checked.
            raise CheckpointError(f"{path}: not a wganlab checkpoint (archive member "
                                  f"{info.filename!r} is compressed)")
        if info.filename.lower() in lower:
            raise CheckpointError(f"{path}: not a wganlab checkpoint (archive member "
                                  f"{info.filename!r} appears twice)")
        lower.add(info.filename.lower())
    if f"{folder}/data.pkl".lower() not in lower:
        raise CheckpointError(f"{path}: not a wganlab checkpoint (no {folder}/data.pkl)")
    return archive.getinfo(f"{folder}/data.pkl")


def _check_crcs(path: Path, archive: zipfile.ZipFile) -> None:
    """Every member against the CRC-32 torch.save stored: torch itself does not check them,
    so a flipped bit in the tensor data would load as silently different weights."""
    for info in archive.infolist():
        try:
            with archive.open(info) as f:
                while f.read(1 << 20):
                    pass
        except zipfile.BadZipFile as e:
            raise CheckpointError(f"{path}: damaged: {info.filename} does not match the "
                                  f"checksum written with it ({e})") from e


def _check_opcodes(path: Path, member: str, data: bytes) -> None:
    try:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    except (ValueError, EOFError, struct.error) as e:
        raise CheckpointError(f"{path}: {member} is not a valid pickle ({e})") from e
    for name, arg in ops:
        if name in UNSAFE_OPCODES or (name == "GLOBAL" and arg not in SAFE_GLOBALS):
            what = arg.replace(" ", ".") if name == "GLOBAL" else f"opcode {name}"
            raise CheckpointError(f"{path}: refused: {member} would call {what}, which a "
                                  "wganlab checkpoint never contains")
