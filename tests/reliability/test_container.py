"""Defect 1: only torch's own zip layout is read, checked from both ends, never sniffed.

torch.load reads the legacy format whenever a file does not *start* with a zip local header,
while zipfile.is_zipfile looks at the *end*. So a legacy pickle followed by a small zip
looked like a zip with no pickle to check, and torch then read the legacy pickle. And torch
finds zip members case-insensitively, so a pickle named DATA.PKL was read but not checked.
Each file here is built by hand from a real checkpoint.
"""

import io
import zipfile
from pathlib import Path

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.errors import CheckpointError

from .runs import TINY
from .test_model_files import CreatesFile


def small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/readme.txt", "nothing to see")
    return buffer.getvalue()


def legacy_then_zip(state: dict) -> bytes:
    """A legacy-format torch file with a small zip after it: zipfile calls it a zip."""
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue() + small_zip()


def rezipped(data: bytes, rename=lambda name: name, extra=(),
             compression=zipfile.ZIP_STORED) -> bytes:
    """The same members written again by zipfile, renamed, with extra (name, bytes) added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for info in source.infolist():
            z.writestr(rename(info.filename), source.read(info))
        for name, content in extra:
            z.writestr(name, content)
    return buffer.getvalue()


def torch_bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def crafted(good: bytes, state: dict, payload_state: dict) -> dict[str, bytes]:
    bad_pickle = torch_bytes(payload_state)
    return {
        "legacy + zip": legacy_then_zip(state),
        "legacy payload + zip": legacy_then_zip(payload_state),
        "bytes before the zip": b"\x80\x02junk" + good,
        "bytes after the zip": good + b"trailing",
        "zip comment": good[:-2] + b"\x02\0hi",
        "payload as DATA.PKL": rezipped(bad_pickle, lambda n: n.replace("data.pkl", "DATA.PKL")),
        "two folders": rezipped(good, extra=[("other/data.pkl", bad_pickle)]),
        "a second pickle": rezipped(good, extra=[("archive/constants.pkl", b"\x80\x02N.")]),
        "no data.pkl": rezipped(good, lambda n: n.replace("data.pkl", "data/99999")),
        # Its checksums would be checked by unpacking: a bomb could unpack to gigabytes.
        "compressed": rezipped(good, compression=zipfile.ZIP_DEFLATED),
    }


@pytest.fixture
def files(reference, tmp_path):
    """(a real checkpoint, {kind: crafted file}, the file a payload would create)."""
    real = checkpoint.list_checkpoints(reference("wgan-gp"))[0]
    state = checkpoint.load(real)
    target = tmp_path / "pwned"
    payload_state = {**state, "generator": CreatesFile(target)}
    folder = tmp_path / "files"
    folder.mkdir()
    made = {}
    for kind, data in crafted(real.read_bytes(), state, payload_state).items():
        made[kind] = folder / (kind.replace(" ", "-").replace("+", "and") + ".pt")
        made[kind].write_bytes(data)
    return real, made, target


def test_the_crafted_files_fool_a_sniff_and_torch(files):
    """Why the check must read the structure: zipfile says "zip", torch reads the pickle."""
    _, made, _ = files
    assert zipfile.is_zipfile(made["legacy + zip"])
    state = torch.load(made["legacy + zip"], weights_only=True)
    assert "generator" in state  # torch read the legacy pickle at the front


def test_load_refuses_every_crafted_file(files):
    real, made, target = files
    assert checkpoint.load(real)["step"] == 24  # the untouched file still loads
    torch.serialization.add_safe_globals([open])  # as if another library widened it
    try:
        for kind, path in made.items():
            with pytest.raises(CheckpointError, match="not a wganlab checkpoint") as e:
                checkpoint.load(path)
            assert str(path) in str(e.value), kind
            assert not target.exists(), kind
    finally:
        torch.serialization.clear_safe_globals()


def test_the_reason_is_named(files):
    _, made, _ = files
    reasons = {"legacy + zip": "legacy-format", "bytes before the zip": "legacy-format",
               "bytes after the zip": "after the zip's end", "zip comment": "after the zip",
               "payload as DATA.PKL": "DATA.PKL", "two folders": "other/data.pkl",
               "a second pickle": "constants.pkl", "no data.pkl": "no archive/data.pkl",
               "compressed": "is compressed"}
    for kind, reason in reasons.items():
        with pytest.raises(CheckpointError, match=reason.replace(".", r"\.")):
            checkpoint.check_pickle(made[kind])


def commands(run: Path, path: Path) -> dict[str, list]:
    return {
        "train --resume": ["train", "--resume", path, *TINY, "--out", run, "--steps", 30],
        "generate": ["generate", run, "--checkpoint", path, "--out", run.parent / "g.png"],
        "export": ["export", run, "--checkpoint", path, "--out", run.parent / "m.safetensors"],
        "evaluate": ["evaluate", run, "--checkpoint", path, "--n", 8],
    }


@pytest.mark.parametrize("command", ["train --resume", "generate", "export", "evaluate"])
def test_commands_refuse_legacy_behind_a_zip(files, tmp_path, cli, command):
    """A benign legacy checkpoint with a zip after it loaded with exit 0 before the fix."""
    _, made, _ = files
    run = tmp_path / "run"
    code, out, err = cli(*commands(run, made["legacy + zip"])[command])
    assert code == CheckpointError.exit_code, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "legacy-format" in err and made["legacy + zip"].name in err, err
    assert not run.exists() and not (tmp_path / "g.png").exists()
