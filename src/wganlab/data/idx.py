"""The IDX format of MNIST and Fashion-MNIST: a strict reader, a writer, and image/label pairs.

An IDX file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values, big-endian, row-major. Files may be gzipped;
we look at the gzip magic rather than the name because people rename and unpack these files.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> numpy dtype (big-endian, as stored).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODE_OF = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}


CHUNK = 2**20  # bytes read (and unpacked) at a time
# No IDX data set we know comes near this (EMNIST's largest file unpacks to 0.55 GB); a header
# that asks for more is refused before anything is unpacked.
MAX_IDX_BYTES = 2**30


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array in native byte order.

    Every way the file can disagree with its own header raises DataError naming the file.
    A gzipped file is unpacked in chunks into a buffer of the size its header declares (at
    most MAX_IDX_BYTES), so a file that unpacks to more costs no more memory than that.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror or e})") from e
    with raw:
        zipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not zipped:
            return _parse(path, raw)
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                return _parse(path, stream)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: gzip data is corrupt or truncated ({e})") from e


def _read_up_to(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(min(n - len(data), CHUNK))
        if not more:
            break
        data += more
    return data


def _parse(path: Path, stream) -> np.ndarray:
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(magic)} bytes, no 4-byte magic)")
    zero0, zero1, code, ndim = magic
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic {magic.hex()} "
                        "does not start with two zero bytes)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: IDX header says 0 dimensions")
    sizes = _read_up_to(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: file ends inside the header ({4 + len(sizes)} bytes, "
                        f"{ndim} dimensions need {4 + 4 * ndim})")
    dims = struct.unpack(f">{ndim}I", sizes)
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on a lying header
    described = f"the header ({'x'.join(map(str, dims))} of {dtype.name})"
    if expected > MAX_IDX_BYTES:
        raise DataError(f"{path}: {described} declares {expected} bytes, more than the limit "
                        f"of {MAX_IDX_BYTES} bytes for an IDX file; refused without unpacking")
    buffer = np.empty(expected, np.uint8)  # pages are touched only as data arrive
    view, got = memoryview(buffer), 0
    while got < expected:
        n = stream.readinto(view[got:got + CHUNK])
        if not n:
            break
        got += n
    extra = len(_read_up_to(stream, CHUNK)) if got == expected else 0
    if got != expected or extra:
        payload = f"at least {got + extra}" if extra == CHUNK else str(got + extra)
        raise DataError(f"{path}: payload is {payload} bytes but {described} needs "
                        f"{expected}; the file is truncated or has trailing bytes")
    array = buffer.view(dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array: np.ndarray, compress: bool = False) -> Path:
    """Write an array as an IDX file (used to build test fixtures and small exports)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in CODE_OF:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX code")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: need 1..255 dimensions; got {array.ndim}")
    body = bytes([0, 0, CODE_OF[native], array.ndim]) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    body += np.ascontiguousarray(array, dtype=IDX_DTYPES[CODE_OF[native]]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def load_idx_pair(images_path: Path, labels_path: Path, image_hw: tuple[int, int],
                  num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file (N, H, W) uint8 and its labels file (N,) with values < num_classes."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected a 3-D uint8 image array; got "
                        f"{images.ndim}-D {images.dtype}")
    if tuple(images.shape[1:]) != tuple(image_hw):
        raise DataError(f"{images_path}: expected {image_hw[0]}x{image_hw[1]} images; got "
                        f"{images.shape[1]}x{images.shape[2]}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected a 1-D uint8 label array; got "
                        f"{labels.ndim}-D {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{images_path}: contains no images")
    if int(labels.max()) >= num_classes:
        raise DataError(f"{labels_path}: label {int(labels.max())} is out of range "
                        f"0..{num_classes - 1}")
    return images, labels
