"""Promise 5: model files are data. A pickle that would run code when loaded is refused with a
clear error by every command that reads one, and nothing it asks for happens, even with
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set or with torch's allow-list widened.

What the variable does (torch 2.13, torch/serialization.py `load`): it turns weights-only
loading off only for calls that do not pass `weights_only`; an explicit weights_only=True wins.
Our loads pass it, and also check the pickle's globals themselves before torch sees the file
(checkpoint.check_pickle), so neither the variable nor `add_safe_globals` can widen them.
"""

import ast
import pickle
from pathlib import Path

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.errors import CheckpointError

from .runs import TINY

SRC = Path(__file__).resolve().parents[2] / "src"


class CreatesFile:
    """Unpickling this calls open(path, "w"): a file appears if the pickle is executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_files(folder: Path, target: Path) -> dict[str, Path]:
    """The same payload in every container torch.load would read."""
    payload = {"generator": CreatesFile(target), "step": 1}
    files = {"zip": folder / "zip.pt", "zip-protocol-4": folder / "zip4.pt",
             "legacy": folder / "legacy.pt", "raw-pickle": folder / "raw.pt"}
    torch.save(payload, files["zip"])
    torch.save(payload, files["zip-protocol-4"], pickle_protocol=4)
    torch.save(payload, files["legacy"], _use_new_zipfile_serialization=False)
    files["raw-pickle"].write_bytes(pickle.dumps(payload))
    return files


@pytest.fixture
def payloads(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    target = tmp_path / "pwned"
    return target, malicious_files(folder, target)


def test_the_payload_is_real(payloads, monkeypatch):
    """Without weights_only, torch.load runs it: what the variable enables for other code."""
    target, files = payloads
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        torch.load(files["zip"])
    assert target.exists()


def test_a_widened_allow_list_defeats_weights_only_alone(payloads):
    """Why check_pickle exists: weights_only=True runs whatever add_safe_globals allowed."""
    target, files = payloads
    torch.serialization.add_safe_globals([open])
    try:
        torch.load(files["zip"], weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()
    assert target.exists()


@pytest.mark.parametrize("env", [None, "1"])
@pytest.mark.parametrize("widened", [False, True])
def test_checkpoint_load_refuses_code(payloads, monkeypatch, env, widened):
    target, files = payloads
    if env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", env)
    if widened:  # some other library in the process allow-listed open()
        torch.serialization.add_safe_globals([open])
    try:
        for kind, path in files.items():
            with pytest.raises(CheckpointError, match=str(path.name)):
                checkpoint.load(path)
            assert not target.exists(), kind
    finally:
        torch.serialization.clear_safe_globals()


def test_the_check_itself_refuses_what_torch_was_told_to_allow(payloads):
    """With open() allow-listed, torch alone would run the payload; check_pickle stops it."""
    target, files = payloads
    with pytest.raises(CheckpointError, match="would call .*open"):
        checkpoint.check_pickle(files["zip"])
    with pytest.raises(CheckpointError, match="STACK_GLOBAL"):
        checkpoint.check_pickle(files["zip-protocol-4"])
    with pytest.raises(CheckpointError, match="not a torch zip archive"):
        checkpoint.check_pickle(files["legacy"])


def commands(run: Path, path: Path) -> dict[str, list]:
    return {
        "train --resume": ["train", "--resume", path, *TINY, "--out", run, "--steps", 1],
        "generate --checkpoint": ["generate", run, "--checkpoint", path, "--out",
                                  run.parent / "grid.png"],
        "generate --model": ["generate", "--model", path, "--out", run.parent / "grid.png"],
        "export --checkpoint": ["export", run, "--checkpoint", path, "--out",
                                run.parent / "m.safetensors"],
        "evaluate --checkpoint": ["evaluate", run, "--checkpoint", path],
    }


@pytest.mark.parametrize("command", ["train --resume", "generate --checkpoint",
                                     "generate --model", "export --checkpoint",
                                     "evaluate --checkpoint"])
def test_commands_refuse_a_malicious_file(tmp_path, payloads, command, cli, monkeypatch):
    target, files = payloads
    if command.startswith("evaluate") and cli("evaluate", "--help")[0] != 0:
        pytest.skip("no `wganlab evaluate` command (yet)")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.serialization.add_safe_globals([open])
    try:
        for kind, path in files.items():
            run = tmp_path / f"run-{kind}"
            code, out, err = cli(*commands(run, path)[command])
            assert code == CheckpointError.exit_code, (kind, err)
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert path.name in err and ("refused" in err or "not a" in err), err
            assert not target.exists(), kind
            assert not run.exists() and not (tmp_path / "grid.png").exists(), kind
    finally:
        torch.serialization.clear_safe_globals()


def test_our_checkpoints_need_no_allow_list(reference):
    torch.serialization.clear_safe_globals()
    for path in checkpoint.list_checkpoints(reference("wgan-gp")):
        checkpoint.check_pickle(path)
        torch.load(path, weights_only=True)  # plain torch, default allow-list only


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Calls of torch.load (or torch.serialization.load) without weights_only=True, and any
    pickle.load / pickle.loads, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in ("torch.load", "torch.serialization.load", "serialization.load"):
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                       and k.value.value is True for k in node.keywords)
            if not safe:
                found.append(f"{filename}:{node.lineno}")
        elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler"):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_the_scanner_finds_unsafe_loads():
    assert unsafe_loads("torch.load(p)") == ["<string>:1"]
    assert unsafe_loads("torch.load(p, weights_only=False)") == ["<string>:1"]
    assert unsafe_loads("x = torch.load(\n  p,\n  map_location='cpu')") == ["<string>:1"]
    assert unsafe_loads("pickle.loads(b)") == ["<string>:1"]
    assert unsafe_loads("torch.load(p, map_location='cpu', weights_only=True)") == []


def test_every_load_in_src_is_weights_only():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    found = [hit for f in files for hit in unsafe_loads(f.read_text(), str(f.relative_to(SRC)))]
    assert found == [], f"torch.load without weights_only=True (or pickle) at {found}"
    assert "torch.load(" in (SRC / "wganlab" / "base" / "checkpoint.py").read_text()
