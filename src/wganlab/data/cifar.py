"""CIFAR-10, binary version only: records of 1 label byte + 3 x 32 x 32 pixel bytes.

The pickled "python version" is never read (unpickling runs code). Batches are read straight
out of the tar by an allowlist of member names, into memory: nothing is written to disk, so a
crafted member path (../.., absolute, symlink) cannot place a file anywhere.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError
from .sources import CIFAR_ARCHIVE

SHAPE = (3, 32, 32)
RECORD = 1 + SHAPE[0] * SHAPE[1] * SHAPE[2]
NUM_CLASSES = 10
BIN_DIR = "cifar-10-batches-bin"
BATCHES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def finder_for(split: str):
    """A sources.Finder: the extracted batches if present (faster), else the archive."""
    def find(folder: Path, names: tuple[str, ...]) -> list[Path] | None:
        for batch_dir in (folder / BIN_DIR, folder):
            paths = [batch_dir / b for b in BATCHES[split]]
            if all(p.is_file() for p in paths):
                return paths
        archive = folder / CIFAR_ARCHIVE
        return [archive] if archive.is_file() else None
    return find


def parse_records(blob: bytes, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from one batch's bytes."""
    if len(blob) == 0 or len(blob) % RECORD:
        raise DataError(f"{origin}: {len(blob)} bytes is not a whole number of "
                        f"{RECORD}-byte CIFAR-10 records")
    records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{origin}: label {int(labels.max())} is out of range "
                        f"0..{NUM_CLASSES - 1}")
    # Each record stores the red plane, then green, then blue, each row-major: already CHW.
    images = records[:, 1:].reshape(-1, *SHAPE).copy()
    return images, labels


def _read_archive(archive: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in wanted:
                    continue
                if not member.isreg():
                    raise DataError(f"{archive}: member {member.name} is not a regular file")
                if base in blobs:
                    raise DataError(f"{archive}: more than one member named {base}")
                blobs[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: cannot read the tar archive ({e})") from e
    missing = [name for name in wanted if name not in blobs]
    if missing:
        raise DataError(f"{archive}: missing {', '.join(missing)} (is this the binary "
                        f"version, {CIFAR_ARCHIVE}?)")
    return blobs


def load_cifar10(paths: list[Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the split's batches from the archive or from extracted .bin files."""
    wanted = BATCHES[split]
    if len(paths) == 1 and paths[0].name == CIFAR_ARCHIVE:
        archive = paths[0]
        blobs = _read_archive(archive, wanted)
        parts = [parse_records(blobs[name], f"{archive}:{name}") for name in wanted]
    else:
        parts = []
        for path in paths:
            try:
                blob = path.read_bytes()
            except OSError as e:
                raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
            parts.append(parse_records(blob, str(path)))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels
