"""Seeded mutation fuzzing of every reader of user files: IDX, image folders, checkpoints and
safetensors exports. Valid files are damaged by Hypothesis (bytes flipped, cut, inserted,
header fields set to extremes); each read must give its result or the project's own error
(DataError, CheckpointError), nothing else, within a memory cap.
"""

from __future__ import annotations

import contextlib
import io
import resource
import struct
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from wganlab.base import checkpoint
from wganlab.data import read_idx, write_idx
from wganlab.data.folder import BadImageWarning, load_folder
from wganlab.errors import CheckpointError, DataError
from wganlab.generate import export, load_generator

from .conftest import make_run

SETTINGS = dict(max_examples=20, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
CAP = 1 << 30  # address space a single read may add: 1 GiB


@contextlib.contextmanager
def memory_cap(extra: int = CAP):
    """Lower this process's address-space limit to what it uses now plus `extra`, so that a
    reader asked to allocate gigabytes fails (MemoryError) instead of swapping the machine."""
    with open("/proc/self/status") as f:
        used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + extra if hard == resource.RLIM_INFINITY else min(hard, used + extra)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@st.composite
def mutated(draw, base: bytes, header: int = 16) -> bytes:
    """base with a few edits: flip a byte, cut, insert, or set a 4-byte header word to an
    extreme value (sizes and counts live there)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "word"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, max(1, len(data))))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            word = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 60_000, 1 << 24]))
            pos = draw(st.integers(0, max(0, min(header, len(data)) - 4)))
            data[pos:pos + 4] = struct.pack(">I", word)
    return bytes(data)


def idx_bytes(tmp_path, compress: bool) -> bytes:
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    return write_idx(tmp_path / "base.idx", images, compress=compress).read_bytes()


@pytest.mark.parametrize("compress", [False, True])
@settings(**SETTINGS)
@given(data=st.data())
def test_idx_reader(compress, data, tmp_path):
    path = tmp_path / "fuzzed-idx"
    path.write_bytes(data.draw(mutated(idx_bytes(tmp_path, compress))))
    with memory_cap():
        try:
            array = read_idx(path)
        except DataError as e:
            assert str(path) in str(e)
            return
    assert array.size * array.itemsize <= 1 << 20  # no more than the file could hold


def png_bytes(mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert(mode).save(buf, "PNG")
    return buf.getvalue()


@settings(**SETTINGS)
@given(data=st.data(), mode=st.sampled_from(["L", "RGB", "RGBA", "P"]),
       skip=st.booleans(), channels=st.sampled_from([1, 3]))
def test_image_folder_reader(data, mode, skip, channels, tmp_path):
    root = tmp_path / "folder"
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    (root / "good.png").write_bytes(png_bytes("L"))
    (root / "fuzzed.png").write_bytes(data.draw(mutated(png_bytes(mode), header=33)))
    with memory_cap(), warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        try:
            images = load_folder(root, (channels, 8, 8), "skip" if skip else "error")
        except DataError as e:
            assert str(root) in str(e) and not skip
            return
    assert images.shape[1:] == (channels, 8, 8) and 1 <= len(images) <= 2


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("fuzz") / "run")
    return next((run / "checkpoints").iterdir()), export(run, run.parent / "model.safetensors")


@settings(**SETTINGS)
@given(data=st.data())
def test_checkpoint_loader(data, saved_run, tmp_path):
    path = tmp_path / "step-00000001.pt"
    path.write_bytes(data.draw(mutated(saved_run[0].read_bytes(), header=64)))
    with memory_cap():
        try:
            state = checkpoint.load(path)
            load_generator(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            return
    assert isinstance(state, dict) and isinstance(state["generator"], dict)


@settings(**SETTINGS)
@given(data=st.data())
def test_safetensors_export_loader(data, saved_run, tmp_path):
    path = tmp_path / "fuzzed.safetensors"
    # The first 8 bytes are the header's length (little-endian); the JSON header follows.
    path.write_bytes(data.draw(mutated(saved_run[1].read_bytes(), header=120)))
    with memory_cap():
        try:
            generator = load_generator(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            return
    with torch.no_grad():
        assert generator(torch.zeros(2, generator.z_dim)).shape[0] == 2
