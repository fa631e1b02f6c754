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


def _read_bytes(path: Path) -> bytearray:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror or e})") from e
    if raw[:2] != GZIP_MAGIC:
        return bytearray(raw)
    try:
        return bytearray(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: gzip data is corrupt or truncated ({e})") from e


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array in native byte order.

    Every way the file can disagree with its own header raises DataError naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes, no 4-byte magic)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic {bytes(data[:4]).hex()} "
                        "does not start with two zero bytes)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: IDX header says 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: file ends inside the header ({len(data)} bytes, "
                        f"{ndim} dimensions need {header})")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on a lying header
    payload = len(data) - header
    if payload != expected:
        shape = "x".join(map(str, dims))
        raise DataError(f"{path}: payload is {payload} bytes but the header ({shape} of "
                        f"{dtype.name}) needs {expected}; the file is truncated or has "
                        "trailing bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
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
