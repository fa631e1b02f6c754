"""Issue 21's hostile pass: files a user hands us and files we write. Each case is set up
here and added to bad_inputs.py's list; `keep` names files that must come out byte for byte
(and kind for kind) as they went in, `then` files a case must have written.

Root causes, each tried over several commands and shapes, not only the issue's examples:
outputs over devices, fifos, folders and links; folders that are not ours; resume by names
and edited files; run files without a schema; config files that are binary, doubled, endless
or use `~`; exports whose header lies; a closed stdout.
"""
# ruff: noqa: E501  (one case a line reads best)

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from wganlab.base import checkpoint
from wganlab.cli import main

OLD_CODE = bool(os.environ.get("WGANLAB_AUDIT_OLD_CODE"))  # leave out cases that write into /


def snapshot(path) -> tuple | None:
    """What a check compares: the kind of thing at `path` and, for a file, its bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    data = Path(path).read_bytes() if stat.S_ISREG(info.st_mode) else os.readlink(path) \
        if stat.S_ISLNK(info.st_mode) else None
    return stat.S_IFMT(info.st_mode), data


def closed_pipe():
    """stdout as `| head -1` leaves it: a pipe whose reader has gone."""
    read, write = os.pipe()
    os.close(read)
    return os.fdopen(write, "w", buffering=1)


def train(out: Path, steps: int, tiny: list[str], *extra) -> Path:
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        assert main(["train", "--steps", str(steps), "--out", str(out), "--image-shape",
                     "1,8,8", "--z-dim", "8", "--checkpoint-every", "6", *tiny,
                     *map(str, extra)]) == 0
    return out


def fresh(w: Path, name: str, steps: int, tiny) -> Path:
    shutil.rmtree(w / name, ignore_errors=True)
    return train(w / name, steps, tiny)


def hostile_outputs(w: Path) -> dict[str, Path]:
    """Things that are not regular files, where a command may be told to write."""
    folder = w / "targets"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    things = {"device": folder / "null", "fifo": folder / "fifo", "socket": folder / "sock",
              "folder": folder / "dir.safetensors"}
    os.mknod(things["device"], stat.S_IFCHR | 0o666, os.makedev(1, 3)) if os.geteuid() == 0 \
        else things.pop("device")
    os.mkfifo(things["fifo"])
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(things["socket"]))
    sock.close()
    things["folder"].mkdir()
    return things


def add_file_cases(w: Path, run: Path, tiny: list[str], bad, good, either) -> None:
    """Add every case of this pass through bad/good/either (see bad_inputs.py)."""
    a, b = fresh(w, "A", 14, tiny), fresh(w, "B", 13, tiny)
    with contextlib.redirect_stdout(open(os.devnull, "w")), \
            contextlib.redirect_stderr(open(os.devnull, "w")):
        main(["evaluate", str(run), "--n", "10"])  # trains and caches the evaluator once
    a_ckpt = checkpoint.list_checkpoints(a)[0]
    b_ckpt = checkpoint.list_checkpoints(b)[0]

    # One writer policy: never over a device, fifo, socket or folder; links the user named
    # are written through, others refused; names that fit have temporaries that fit.
    for target in hostile_outputs(w).values():
        bad("generate", run, "--n", "2", "--out", target, keep=[target])
        bad("report", run, "--out", target, keep=[target])
        bad("export", run, "--out", target, keep=[target])
        bad("evaluate", run, "--n", "10", "--out", target, keep=[target])
    (w / "mine.png").write_bytes(b"user's picture")
    (w / "link.png").unlink(missing_ok=True)
    (w / "link.png").symlink_to(w / "mine.png")
    good("generate", run, "--n", "2", "--out", w / "link.png", then=[w / "mine.png"])
    for n in (200, 245, 250):
        good("generate", run, "--n", "2", "--out", w / ("n" * (n - 4) + ".png"), then=[w / ("n" * (n - 4) + ".png")])
    # generate --out-dir never replaces a file it did not write
    photos = w / "photos"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir()
    for name, data in (("00000.png", b"photo 0"), ("00001.png", b"photo 1"), ("00003.jpg", b"x")):
        (photos / name).write_bytes(data)
    bad("generate", run, "--n", "4", "--out-dir", photos, keep=list(photos.iterdir()))
    linked = w / "linked-dir"
    shutil.rmtree(linked, ignore_errors=True)
    linked.mkdir()
    (linked / "00002.png").symlink_to(w / "mine.png")
    bad("generate", run, "--n", "4", "--out-dir", linked, keep=[w / "mine.png", linked / "00002.png"])
    good("generate", run, "--n", "3", "--out-dir", w / "own-samples")
    good("generate", run, "--n", "3", "--out-dir", w / "own-samples")  # its own files again
    # Folders that are not a run's: an editor's config.json, photos, the root and system folders
    for name, text in (("project", '{"editor.fontSize": 14}'), ("project2", "[1, 2]"),
                       ("project3", "// settings\n{}"), ("project4", '{"model": 1}')):
        (w / name).mkdir(exist_ok=True)
        (w / name / "config.json").write_text(text)
        bad("train", "--resume", "--out", w / name, "--steps", "1", *tiny, keep=[w / name / "config.json"])
        bad("train", "--out", w / name, "--steps", "1", *tiny, keep=[w / name / "config.json"])
    bad("train", "--out", photos, "--steps", "1", *tiny, keep=list(photos.iterdir()))
    bad("train", "--resume", "--out", photos, "--steps", "1", *tiny, keep=list(photos.iterdir()))
    # (Not run against code from before issue 21, which would write into the root: OLD_CODE.)
    for folder in () if OLD_CODE else ("/", "/etc", "/usr/local", "/dev", "/proc/self", "/sys", "/boot"):
        toml = w / f"out{folder.replace('/', '-')}.toml"
        toml.write_text(f'[run]\nout = "{folder}"\n')
        bad("train", "--config", toml, "--steps", "1", *tiny, keep=[Path(folder) / "config.json"])
        bad("train", "--out", folder, "--steps", "1", *tiny, keep=[Path(folder) / "config.json"])
    for folder in () if OLD_CODE else ("/", "/etc"):
        bad("generate", run, "--n", "2", "--out", Path(folder) / "wganlab-grid.png", keep=[Path(folder) / "wganlab-grid.png"])
        bad("generate", run, "--n", "2", "--out-dir", folder, keep=[Path(folder) / "00000.png"])
        bad("compare", a, "--out", folder, keep=[Path(folder) / "compare.md"])
    shutil.rmtree(w / "home" / "runs" / "tilde", ignore_errors=True)
    (w / "tilde.toml").write_text('[run]\nout = "~/runs/tilde"\n')
    good("train", "--config", w / "tilde.toml", "--steps", "1", *tiny, then=[w / "home" / "runs" / "tilde" / "config.json"])

    # evaluate A --checkpoint B/...: B's score beside B, never in A/eval.json
    (a / "eval.json").write_text(json.dumps({"fid": 1.5, "checkpoint": str(a_ckpt), "step": 14}))
    good("evaluate", a, "--checkpoint", b_ckpt, "--n", "20", keep=[a / "eval.json"], then=[b / "eval.json"])

    # Resume trusts contents: a renamed checkpoint, only best.pt, an edited config, a newer
    # version's settings, a checkpoint whose entries are of the wrong kind.
    c = fresh(w, "renamed", 14, tiny)
    checkpoint.checkpoint_path(c, 12).rename(checkpoint.checkpoint_path(c, 99))
    bad("train", "--resume", "--out", c, "--steps", "20", "--keep-last", "1", "--no-progress", keep=list((c / "checkpoints").iterdir()) + [c / "metrics.jsonl"])
    for name in ("best.pt", "final.pt"):
        d = fresh(w, f"only-{name}", 12, tiny)
        for older in checkpoint.list_checkpoints(d)[1:]:
            older.unlink()
        checkpoint.checkpoint_path(d, 12).rename(d / "checkpoints" / name)
        bad("train", "--resume", "--out", d, "--steps", "20", "--no-progress", keep=[d / "metrics.jsonl"])
    for section, key, value in (("train", "g_lr", 0.01), ("model", "padding", "keras"), ("train", "gp_weight", 0.0), ("train", "n_critic", 2), ("train", "loss", "hinge")):
        e = fresh(w, f"edited-{key}", 12, tiny)
        cfg = json.loads((e / "config.json").read_text())
        cfg[section][key] = value
        (e / "config.json").write_text(json.dumps(cfg))
        bad("train", "--resume", "--out", e, "--steps", "20", "--no-progress", keep=[e / "metrics.jsonl", e / "config.json"])
    for key, value in (("unknown", True), ("generator", None), ("step", -3), ("step", "12"), ("fixed_z", 5), ("rng", [1]), ("ema", 3)):
        f = fresh(w, f"state-{key}-{value}", 12, tiny)
        checkpoint.checkpoint_path(f, 6).unlink()  # the only one: nothing to fall back to
        path = checkpoint.checkpoint_path(f, 12)
        state = torch.load(path, weights_only=True)
        if key == "unknown":
            state["version"], state["config"]["train"]["warp_drive"] = "9.0.0", True
        elif value is None:
            state.pop(key)
        else:
            state[key] = value
        torch.save(state, path)  # as another tool would: no checks on the way in
        bad("train", "--resume", "--out", f, "--steps", "20", "--no-progress", keep=[f / "metrics.jsonl"])
        bad("train", "--resume", path, "--out", f, "--steps", "20", "--no-progress", keep=[f / "metrics.jsonl"])

    # Run files read without a schema: every command over each damaged file.
    damage = {"comment": lambda t: t.replace("{", "{ // note\n", 1), "trailing comma": lambda t: t.rstrip().rstrip("}").rstrip() + ",}",
              "cut short": lambda t: t[: len(t) // 2], "a list": lambda t: "[1, 2]", "binary": lambda t: "\udcff\udcfe\x00",
              "wrong type": lambda t: t.replace('"steps_per_epoch": 12', '"steps_per_epoch": "x"').replace('"fid": 1.5', '"fid": "abc"').replace('"image_shape": [', '"image_shape": ["x", ')}
    for file in ("config.json", "run.json", "eval.json"):
        for how, change in damage.items():
            g = fresh(w, f"damaged-{file}-{how}".replace(" ", "-"), 12, tiny)
            (g / "eval.json").write_text(json.dumps({"fid": 1.5, "step": 12, "train_seconds": 1.0}))
            (g / file).write_text(change((g / file).read_text()), errors="surrogateescape")
            for command in (["plot", g], ["report", g], ["compare", g, "--out", w / "compare"], ["train", "--resume", "--out", g, "--steps", "13", "--no-progress"], ["export", g, "--out", w / f"card-{file}-{how}".replace(" ", "-")]):
                either(*command, keep=[g / "config.json"] if command[0] != "train" else [])
    for how, line in (("a list", "[1, 2]"), ("text", '"row"'), ("step as text", '{"step": "x", "g_loss": 1}'), ("no step", '{"g_loss": 1}'),
                      ("nested", '{"step": 3, "g_loss": {"a": 1}}'), ("loss as text", '{"step": 3, "g_loss": "low", "d_loss": 1}'), ("cut", '{"step": 3, "g_lo')):
        h = fresh(w, f"metrics-{how}".replace(" ", "-"), 12, tiny)
        (h / "eval.json").write_text(json.dumps({"fid": 1.5, "step": 12, "train_seconds": 1.0}))
        with open(h / "metrics.jsonl", "a") as out:
            out.write(line + "\n")
        for command in (["plot", h], ["report", h], ["compare", h, "--out", w / "compare"]):
            good(*command)
        good("train", "--resume", "--out", h, "--steps", "13", "--no-progress")

    # Config files: binary, a key twice, endless or huge, a folder, `~`
    for name, data in (("bin.json", b"\xff\xfe\x00{}"), ("bin.toml", b"[train]\nsteps = \xff\n"), ("latin1.json", '{"run": {"out": "caf\xe9"}}'.encode("latin-1")),
                       ("utf16.json", '{"train": {}}'.encode("utf-16")), ("dup.json", b'{"train": {"steps": 3, "steps": 5}}'),
                       ("dup-section.json", b'{"train": {"steps": 3}, "train": {"steps": 5}}'), ("big.toml", b"# " + b"x" * (2 << 20) + b"\n")):
        (w / name).write_bytes(data)
        bad("train", "--dry-run", "--config", w / name, "--out", w / "dry")
    # (The code before issue 21 read /dev/zero until the kernel killed it: not run there.)
    endless = () if OLD_CODE else (("zero.toml", "/dev/zero"), ("urandom.json", "/dev/urandom"))
    for name, target in (*endless, ("null.toml", "/dev/null")):
        (w / name).unlink(missing_ok=True)
        (w / name).symlink_to(target)
        bad("train", "--dry-run", "--config", w / name, "--out", w / "dry")
    if not OLD_CODE:
        bad("train", "--dry-run", "--config", "/dev/zero", "--out", w / "dry")

    # Exports whose header names other numbers than the weights are
    export = w / "m.safetensors"
    train_export = main(["export", str(a), "--out", str(export)]) == 0
    if train_export:
        with safe_open(str(export), framework="pt") as f:
            meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        for i, dtype in enumerate((torch.int32, torch.int16, torch.uint8, torch.bool)):
            name = sorted(k for k, v in tensors.items() if v.is_floating_point())[i]
            forged = dict(tensors)
            forged[name] = forged[name].view(dtype) if dtype.itemsize == 4 else forged[name].to(dtype)
            path = w / f"forged-{i}.safetensors"
            path.write_bytes(save(forged, metadata=meta))
            bad("generate", "--model", path, "--n", "2", "--out", w / "forged.png")
            bad("export", path, "--out", w / f"forged-{i}-copy.safetensors")

    # A closed stdout (`| head -1`): the run goes on and saves
    out = w / "piped"
    shutil.rmtree(out, ignore_errors=True)
    good("train", "--steps", "14", "--out", out, "--image-shape", "1,8,8", "--z-dim", "8", *tiny, closed_stdout=True,
         then=[checkpoint.checkpoint_path(out, 14), out / "report.html"])
    good("generate", a, "--n", "2", "--out", w / "piped.png", closed_stdout=True, then=[w / "piped.png"])
