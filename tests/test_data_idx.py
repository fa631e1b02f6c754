"""The IDX reader: valid files round-trip; each malformed kind raises DataError naming the file."""

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest

from wganlab.data import read_idx, write_idx
from wganlab.data.idx import load_idx_pair
from wganlab.errors import DataError


def _images(n=5, h=28, w=28):
    return np.arange(n * h * w, dtype=np.uint8).reshape(n, h, w)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_ubyte(tmp_path, compress):
    x = _images()
    path = write_idx(tmp_path / "x.idx", x, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    y = read_idx(path)
    assert y.dtype == np.uint8 and y.shape == (5, 28, 28)
    np.testing.assert_array_equal(x, y)


def test_gzip_detected_by_magic_not_name(tmp_path):
    x = _images(2)
    gz_named_raw = write_idx(tmp_path / "raw.gz", x, compress=False)
    raw_named_gz = write_idx(tmp_path / "plain-idx3-ubyte", x, compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), x)
    np.testing.assert_array_equal(read_idx(raw_named_gz), x)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", "<i2", "i4", "f4", "f8"])
def test_every_idx_dtype_round_trips(tmp_path, dtype):
    x = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    if dtype == "u1":
        x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    y = read_idx(write_idx(tmp_path / "x.idx", x))
    assert y.dtype == x.dtype.newbyteorder("=")
    np.testing.assert_array_equal(y, x)


def test_header_is_big_endian(tmp_path):
    # A hand-built int16 file: values must be read big-endian whatever the machine is.
    path = tmp_path / "h.idx"
    path.write_bytes(bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + struct.pack(">hh", 1, -2))
    np.testing.assert_array_equal(read_idx(path), [1, -2])


def _valid_bytes():
    return bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 3) + bytes(range(18))


BROKEN = {
    "wrong magic": (b"\x01\x00" + _valid_bytes()[2:], "two zero bytes"),
    "bad dtype code": (bytes([0, 0, 0x07]) + _valid_bytes()[3:], "dtype code 0x07"),
    "zero ndim": (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    "ndim beyond header": (bytes([0, 0, 0x08, 9]) + struct.pack(">3I", 2, 3, 3),
                           "ends inside the header"),
    "one byte short": (_valid_bytes()[:-1], "payload is 17 bytes"),
    "one byte long": (_valid_bytes() + b"\x00", "payload is 19 bytes"),
    "too short for magic": (b"\x00\x00", "no 4-byte magic"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
@pytest.mark.parametrize("compress", [False, True])
def test_broken_file_raises_data_error_naming_file(tmp_path, kind, compress):
    data, why = BROKEN[kind]
    path = tmp_path / f"broken-{kind.replace(' ', '-')}.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert why in str(info.value)


def test_valid_bytes_fixture_is_itself_valid(tmp_path):
    # Guards the table above: each broken case differs from a file that does load.
    path = tmp_path / "ok.idx"
    path.write_bytes(_valid_bytes())
    assert read_idx(path).shape == (2, 3, 3)


def test_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_valid_bytes())[:-6])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_missing_file_names_file(tmp_path):
    with pytest.raises(DataError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")


def test_count_mismatch_names_both_files(tmp_path):
    images = write_idx(tmp_path / "imgs", _images(5))
    labels = write_idx(tmp_path / "labs", np.zeros(4, np.uint8))
    with pytest.raises(DataError) as info:
        load_idx_pair(images, labels, (28, 28), 10)
    assert str(images) in str(info.value) and str(labels) in str(info.value)


def test_pair_checks_shape_rank_and_label_range(tmp_path):
    labels = write_idx(tmp_path / "labs", np.zeros(5, np.uint8))
    small = write_idx(tmp_path / "small", _images(5, 20, 20))
    with pytest.raises(DataError, match="expected 28x28"):
        load_idx_pair(small, labels, (28, 28), 10)
    flat = write_idx(tmp_path / "flat", np.zeros((5, 784), np.uint8))
    with pytest.raises(DataError, match="3-D"):
        load_idx_pair(flat, labels, (28, 28), 10)
    images = write_idx(tmp_path / "imgs", _images(5))
    bad_labels = write_idx(tmp_path / "bad", np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(DataError, match="label 10 is out of range"):
        load_idx_pair(images, bad_labels, (28, 28), 10)
    empty = write_idx(tmp_path / "empty", np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(DataError, match="empty: contains no images"):
        load_idx_pair(empty, write_idx(tmp_path / "nolabels", np.zeros(0, np.uint8)), (28, 28), 10)
    x, y = load_idx_pair(images, labels, (28, 28), 10)
    assert x.shape == (5, 28, 28) and y.shape == (5,)


@pytest.mark.slow
def test_reader_checks_survive_python_O(tmp_path):
    # The checks must be real ifs, not asserts that -O strips.
    path = tmp_path / "short.idx"
    path.write_bytes(_valid_bytes()[:-1])
    code = ("import sys\nfrom wganlab.data import read_idx\nfrom wganlab.errors import DataError\n"
            "try:\n    read_idx(sys.argv[1])\nexcept DataError as e:\n"
            "    print('DataError:', e)\n    sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-O", "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert str(path) in done.stdout and "payload" in done.stdout
