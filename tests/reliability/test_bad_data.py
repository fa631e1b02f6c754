"""Bad inputs the data layer must refuse clearly: broken images and malformed IDX files."""

import io
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from wganlab.data import load_dataset
from wganlab.data.folder import MAX_LISTED, BadImageWarning, read_image
from wganlab.errors import DataError

SHAPE = (3, 16, 16)


def noisy_jpeg_bytes(size=64) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def good_png(path, size=20, value=128):
    Image.fromarray(np.full((size, size), value, np.uint8)).save(path)
    return path


def make_bad(folder, kind):
    if kind == "truncated jpeg":
        path = folder / "cut.jpg"
        path.write_bytes(noisy_jpeg_bytes()[:2000])
    elif kind == "empty file":
        path = folder / "empty.png"
        path.write_bytes(b"")
    elif kind == "text named png":
        path = folder / "readme.PNG"
        path.write_text("hello, I am not a picture\n")
    return path


@pytest.mark.parametrize("kind", ["truncated jpeg", "empty file", "text named png"])
def test_bad_image_is_listed_then_skipped(tmp_path, kind):
    good_png(tmp_path / "good.png")
    bad = make_bad(tmp_path, kind)
    name = f"folder:{tmp_path}"
    with pytest.raises(DataError) as info:
        load_dataset(name, image_shape=SHAPE)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path)) and f": {bad.name}: " in msg
    assert "--on-bad-image skip" in msg and "good.png" not in msg
    with pytest.warns(BadImageWarning, match="skipped 1 of 2"):
        data = load_dataset(name, image_shape=SHAPE, on_bad_image="skip")
    assert len(data) == 1 and data.images.shape[1:] == SHAPE


def test_truncated_jpeg_fails_even_though_pillow_could_pad_it(tmp_path):
    path = make_bad(tmp_path, "truncated jpeg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(OSError, match="truncated"):
        read_image(path, SHAPE)
    # The whole file decodes, so the failure above is the truncation and nothing else.
    (tmp_path / "whole.jpg").write_bytes(noisy_jpeg_bytes())
    assert read_image(tmp_path / "whole.jpg", SHAPE).shape == SHAPE
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # never switched on globally


@pytest.mark.parametrize("side", [40, 64])  # 1600 px: bomb warning; 4096 px: bomb error
def test_decompression_bomb_is_a_bad_file(tmp_path, monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    good_png(tmp_path / "small.png", size=20)  # 400 px: fine
    good_png(tmp_path / "bomb.png", size=side)
    name = f"folder:{tmp_path}"
    with pytest.raises(DataError, match="bomb.png: DecompressionBomb"):
        load_dataset(name, image_shape=SHAPE)
    with pytest.warns(BadImageWarning, match="bomb.png"):
        assert len(load_dataset(name, image_shape=SHAPE, on_bad_image="skip")) == 1


def test_bomb_warning_is_not_turned_into_an_error_globally(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    good_png(tmp_path / "bomb.png", size=40)
    with pytest.raises(DataError):
        load_dataset(f"folder:{tmp_path}", image_shape=SHAPE)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Image.open(tmp_path / "bomb.png").close()  # outside our loader: still a warning
    assert any(issubclass(w.category, Image.DecompressionBombWarning) for w in seen)


def test_many_bad_files_listing_is_capped_with_a_count(tmp_path):
    good_png(tmp_path / "good.png")
    for i in range(MAX_LISTED + 5):
        (tmp_path / f"bad{i:02d}.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_dataset(f"folder:{tmp_path}", image_shape=SHAPE)
    msg = str(info.value)
    assert f"{MAX_LISTED + 5} of {MAX_LISTED + 6}" in msg and "and 5 more" in msg
    assert msg.count(".png: ") == MAX_LISTED and "bad00.png" in msg and "bad14.png" not in msg


def test_all_files_bad_with_skip_is_still_an_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 image files"):
        with pytest.warns(BadImageWarning):
            load_dataset(f"folder:{tmp_path}", image_shape=SHAPE, on_bad_image="skip")


# Each IDX failure kind, checked in one `python -O` process: asserts would be stripped there.
IDX_SCRIPT = r"""
import gzip, struct, sys
from pathlib import Path
from wganlab.data import read_idx
from wganlab.data.idx import load_idx_pair
from wganlab.errors import DataError

folder = Path(sys.argv[1])
good = bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes(3)
cases = {
    "magic": b"\x00\x01" + good[2:],
    "dtype": bytes([0, 0, 0x0A]) + good[3:],
    "ndim": bytes([0, 0, 8, 0]),
    "short": good[:-1],
    "long": good + b"\x00",
    "gzip": gzip.compress(good)[:-5],
}
for name, data in cases.items():
    path = folder / ("case-" + name)
    path.write_bytes(data)
    try:
        read_idx(path)
        print(name, "ACCEPTED")
    except DataError as e:
        print(name, "named" if str(path) in str(e) else "unnamed")
images = folder / "imgs"
images.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 28, 28) + bytes(2 * 784))
labels = folder / "labs"
labels.write_bytes(good)
try:
    load_idx_pair(images, labels, (28, 28), 10)
    print("count ACCEPTED")
except DataError as e:
    print("count", "named" if str(images) in str(e) and str(labels) in str(e) else "unnamed")
print("optimize", sys.flags.optimize)
"""


@pytest.mark.slow
def test_idx_failures_under_python_O(tmp_path):
    done = subprocess.run([sys.executable, "-O", "-c", IDX_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert "optimize 1" in lines
    for kind in ("magic", "dtype", "ndim", "short", "long", "gzip", "count"):
        assert f"{kind} named" in lines, done.stdout


def test_idx_header_count_lies_about_payload(tmp_path):
    # Header says 1000 items, file holds 3: refused before any reshape can misbehave.
    path = tmp_path / "liar-labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 1000) + bytes(3))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(path.read_bytes())
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 1000, 28, 28) + bytes(3 * 784))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: payload"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
