"""Promise 6: `export` + `generate --model` reproduce the checkpoint's images bit for bit, and a
damaged or forged .safetensors file gives a clear error, never a crash or a huge allocation.
"""

import json
import struct

import pytest
import torch

from wganlab.errors import CheckpointError
from wganlab.generate import load_generator, sample


@pytest.fixture
def exported(reference, tmp_path, cli):
    model = tmp_path / "model.safetensors"
    code, _, err = cli("export", reference("wgan-gp"), "--out", model)
    assert code == 0, err
    return model


def test_export_reproduces_the_checkpoint_bit_for_bit(reference, exported, tmp_path, cli):
    run = reference("wgan-gp")
    a, b = tmp_path / "from-run.png", tmp_path / "from-export.png"
    assert cli("generate", run, "--n", 16, "--seed", 3, "--out", a)[0] == 0
    assert cli("generate", "--model", exported, "--n", 16, "--seed", 3, "--out", b)[0] == 0
    assert a.read_bytes() == b.read_bytes()

    g_run, g_export = load_generator(run), load_generator(exported)
    cfg_run, cfg_export, info = g_run.config, g_export.config, g_export.provenance
    assert cfg_run.to_dict() == cfg_export.to_dict() and info["step"] == 24
    x = sample(g_run, 32, seed=5, uint8=False)
    y = sample(g_export, 32, seed=5, uint8=False)
    assert torch.equal(x, y)  # the floats, not just the 8-bit pictures


def split(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def forgeries(data: bytes) -> dict[str, bytes]:
    header, body = split(data)
    first = next(k for k in header if k != "__metadata__")
    meta = header["__metadata__"]
    config = json.loads(meta["config"])
    config["model"]["g_filters"] = 10**6  # a 10**14-byte generator, if anyone built it
    return {
        "truncated in the body": data[: len(data) // 2],
        "truncated in the header": data[:20],
        "empty": b"",
        "huge header length": struct.pack("<Q", 2**62) + data[8:],
        "header longer than the file": struct.pack("<Q", len(data)) + data[8:],
        "offsets past the end": join(
            {**header, first: {**header[first], "shape": [250_000_000_000],
                               "data_offsets": [0, 10**12]}}, body),
        "metadata not JSON": join({**header, "__metadata__": {**meta, "config": "{oops"}}, body),
        "config of a giant model": join(
            {**header, "__metadata__": {**meta, "config": json.dumps(config)}}, body),
        "not a wganlab export": join({**header, "__metadata__": {"format": "other"}}, body),
    }


def test_forged_files_give_a_clear_error(exported, tmp_path, cli):
    for name, blob in forgeries(exported.read_bytes()).items():
        path = tmp_path / "forged.safetensors"
        path.write_bytes(blob)
        with pytest.raises(CheckpointError, match="forged.safetensors"):
            load_generator(path)
        code, _, err = cli("generate", "--model", path, "--out", tmp_path / "x.png")
        assert code == CheckpointError.exit_code, (name, err)
        assert len(err.strip().splitlines()) == 1 and "forged.safetensors" in err, (name, err)
        assert not (tmp_path / "x.png").exists(), name
