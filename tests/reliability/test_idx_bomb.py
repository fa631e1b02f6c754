"""Defect 7: a gzipped IDX file unpacks to no more than its header says (and never past a hard
limit), read in bounded chunks, so a gzip bomb costs neither memory nor a crash.

The bombs are gzip files of many members, each the compressed form of 1 MiB of zeros: a few
hundred kilobytes on disk that unpack to hundreds of megabytes, made in milliseconds.
"""

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from wganlab.data import idx, load_dataset, read_idx
from wganlab.errors import DataError

MIB = 2**20


def header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def bomb(path: Path, head: bytes, mib_of_zeros: int) -> Path:
    """`head` then mib_of_zeros MiB of zero bytes, gzipped as concatenated members."""
    zeros = gzip.compress(bytes(MIB), compresslevel=9)
    path.write_bytes(gzip.compress(head) + zeros * mib_of_zeros)
    return path


def peak_bytes(fn) -> int:
    """Peak Python/NumPy allocation while fn() runs (tracemalloc traces both)."""
    tracemalloc.start()
    try:
        fn()
    except DataError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_bomb_behind_a_small_header_is_refused_in_bounded_memory(tmp_path):
    path = bomb(tmp_path / "train-images-idx3-ubyte.gz", header((10, 28, 28)), 256)
    assert path.stat().st_size < 2 * MIB  # 256 MiB once unpacked
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: .*trailing bytes"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 8 * MIB


def test_a_header_past_the_hard_limit_is_refused_before_reading(tmp_path):
    dims = (2**16, 2**16, 2**4)  # 64 GiB of uint8
    path = bomb(tmp_path / "huge.gz", header(dims), 1)
    with pytest.raises(DataError, match=r"huge.gz: .*68719476736 bytes.* limit"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 8 * MIB


def test_an_honest_bomb_past_the_limit(tmp_path, monkeypatch):
    """A header that tells the truth about too much data: refused by the hard limit (made
    small here so the test stays small), without unpacking it."""
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 32 * MIB, raising=False)
    path = bomb(tmp_path / "honest.gz", header((64, MIB)), 64)
    with pytest.raises(DataError, match="honest.gz: .* limit"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 8 * MIB


def test_a_header_bigger_than_the_data_costs_only_the_data(tmp_path):
    """The buffer is filled as data arrive; a lying header does not make us touch more."""
    path = bomb(tmp_path / "short.gz", header((512, MIB)), 2)  # says 512 MiB, holds 2
    with pytest.raises(DataError, match="short.gz: payload is 2097152 bytes .* truncated"):
        read_idx(path)


def test_chunked_reading_returns_the_same_array(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (3 * idx.CHUNK // 784 + 7, 28, 28), dtype=np.uint8)
    for compress in (False, True):
        path = idx.write_idx(tmp_path / f"a{compress}", array, compress=compress)
        np.testing.assert_array_equal(read_idx(path), array)


def test_load_dataset_names_the_bomb(tmp_path):
    bomb(tmp_path / "train-images-idx3-ubyte.gz", header((4, 28, 28)), 64)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(header((4,)) + bytes(4)))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
