"""Issue 21: folders that are not ours. `train` writes only into a new, empty or run folder
(an editor's config.json, a folder of photos, the root: refused, untouched); `generate
--out-dir` never replaces a file it did not write. Generated over folder contents."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.base.files import WriteRefused
from wganlab.base.sample_files import sample_png, write_sample_files
from wganlab.config import Config
from wganlab.errors import ConfigError
from wganlab.runfolder import RUN_WRITES, check_run_folder

FAST = dict(max_examples=30, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])
RUN_CONFIG = Config().to_json()
CONFIGS = {"run's": RUN_CONFIG, "editor's": '{"editor.fontSize": 14}', "list": "[1, 2]",
           "comment": "{ // settings\n}", "empty": "", "half a run's": RUN_CONFIG[:200],
           "sections only": '{"model": {}, "train": {}, "run": {}}',
           "unknown section": '{"model": {}, "train": {}, "run": {}, "tools": {}}'}
FOREIGN = ["photo.jpg", "notes.txt", "README.md", "data", ".git", "config.yaml"]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() if p.is_file() else None
            for p in folder.rglob("*")}


@settings(**FAST)
@given(config=st.sampled_from([None, *CONFIGS]),
       ours=st.sets(st.sampled_from(sorted(RUN_WRITES - {"config.json"}))),
       theirs=st.sets(st.sampled_from(FOREIGN), max_size=2), resume=st.booleans())
def test_train_takes_only_a_runs_folder(config, ours, theirs, resume):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        for name in ours | theirs:
            (out / name).write_text("x")
        if config is not None:
            (out / "config.json").write_text(CONFIGS[config])
        before = snapshot(out)
        cfg = Config()
        cfg.run.out = str(out)
        is_run = config in ("run's", "sections only") or (config is None and not theirs)
        if is_run:
            check_run_folder(cfg, resume)
        else:
            with pytest.raises(ConfigError, match=f"--out: .*{out}"):
                check_run_folder(cfg, resume)
        assert snapshot(out) == before


@pytest.mark.parametrize("out", ["/", "/etc", "/usr/lib", "/dev", "/proc", "/home"])
def test_train_refuses_the_root_and_system_folders(out):
    cfg = Config()
    cfg.run.out = out
    with pytest.raises(ConfigError, match="system folder"):
        check_run_folder(cfg)


def test_tilde_in_out_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = Config()
    cfg.run.out, cfg.run.data_dir = "~/runs/x", "~/data"
    check_run_folder(cfg)
    assert (cfg.run.out, cfg.run.data_dir) == (f"{tmp_path}/runs/x", f"{tmp_path}/data")


def test_resume_never_rewrites_an_editors_config(tmp_path, cli):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text('{"editor.fontSize": 14}')
    code, _, err = cli("train", "--resume", "--out", project, "--dataset", "synthetic",
                       "--steps", 1, "--no-progress")
    assert code == 2 and "config.json" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in project.iterdir()] == ["config.json"]
    assert (project / "config.json").read_text() == '{"editor.fontSize": 14}'


def test_a_config_file_cannot_send_a_run_to_the_root(tmp_path, cli):
    (tmp_path / "root.toml").write_text('[run]\nout = "/"\n')
    code, _, err = cli("train", "--config", tmp_path / "root.toml", "--dataset", "synthetic",
                       "--steps", 1, "--no-progress")
    assert code == 2 and "system folder" in err
    assert not Path("/samples").exists() and not Path("/config.json").exists()


IMAGES = torch.arange(4 * 3 * 4 * 4, dtype=torch.uint8).reshape(4, 3, 4, 4)
THINGS = ["photo", "png of someone else", "ours", "link", "folder"]


def place(thing: str, path: Path) -> None:
    if thing == "photo":
        path.write_bytes(b"\xff\xd8 a user's photo")
    elif thing == "png of someone else":
        path.write_bytes(sample_png(IMAGES[0]).replace(b"wganlab generate", b"camera app xy"))
    elif thing == "ours":
        path.write_bytes(sample_png(IMAGES[1]))
    elif thing == "link":
        (path.parent / "elsewhere.png").write_bytes(b"linked")
        path.symlink_to(path.parent / "elsewhere.png")
    else:
        path.mkdir()


@settings(**FAST)
@given(existing=st.dictionaries(st.integers(0, 5), st.sampled_from(THINGS), max_size=3))
def test_generate_out_dir_replaces_only_its_own_files(existing):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for index, thing in existing.items():
            place(thing, folder / f"{index:05d}.png")
        before = snapshot(folder)
        collide = [t for i, t in existing.items() if i < len(IMAGES)]
        if all(t == "ours" for t in collide):
            assert write_sample_files(IMAGES, folder) == len(IMAGES)
            written = snapshot(folder)
            assert all(written[Path(f"{i:05d}.png")] == sample_png(IMAGES[i]) for i in range(4))
        else:
            with pytest.raises(WriteRefused, match="generate did not write"):
                write_sample_files(IMAGES, folder)
            assert snapshot(folder) == before  # nothing written, nothing replaced
        shutil.rmtree(folder)
