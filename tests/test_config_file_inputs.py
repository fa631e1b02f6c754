"""Issue 21: config files a user hands us. Decoded as UTF-8 (an error names the file and the
encoding), a key given twice refused in JSON as in TOML, a size cap (a device such as
/dev/zero refused without filling memory), `~` in paths the home folder; and the
out-of-memory handler never crashes on an error without a message."""

from __future__ import annotations

import importlib
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.cli.config_file import MAX_BYTES, read_config_file
from wganlab.errors import ConfigError

cli_main = importlib.import_module("wganlab.cli.main")
FAST = dict(max_examples=25, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])
SETTINGS = {"train": {"batch_size": 8, "steps": 3, "g_lr": 1e-4}, "model": {"z_dim": 16},
            "run": {"dataset": "synthetic", "log_every": 5}}


@settings(**FAST)
@given(data=st.binary(min_size=1, max_size=64), suffix=st.sampled_from([".json", ".toml"]))
def test_any_bytes_give_a_config_or_a_named_error(data, suffix, tmp_path):
    path = tmp_path / f"settings{suffix}"
    path.write_bytes(data)
    try:
        read_config_file(path)
    except ConfigError as e:
        assert str(path) in str(e) and "\n" not in str(e)


@settings(**FAST)
@given(bad=st.binary(min_size=1, max_size=4).filter(lambda b: not _utf8(b)),
       at=st.integers(0, 30))
def test_text_that_is_not_utf8_names_the_file_and_encoding(bad, at, tmp_path):
    text = json.dumps(SETTINGS).encode()
    path = tmp_path / "settings.json"
    path.write_bytes(text[:at] + bad + text[at:])
    with pytest.raises(ConfigError, match=rf"{path}.*not UTF-8.*offset"):
        read_config_file(path)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@settings(**FAST)
@given(section=st.sampled_from(sorted(SETTINGS)), data=st.data())
def test_a_json_key_given_twice_is_refused(section, data, tmp_path):
    key = data.draw(st.sampled_from(sorted(SETTINGS[section])))
    body = json.dumps(SETTINGS)
    pair = json.dumps({key: SETTINGS[section][key]})[1:-1]
    where = body.index(f'"{section}": {{') + len(f'"{section}": {{')
    path = tmp_path / "settings.json"
    path.write_text(body[:where] + pair + ", " + body[where:])
    with pytest.raises(ConfigError, match=rf"{path}: key '{key}' is given twice"):
        read_config_file(path)


def test_a_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_bytes(b"\xef\xbb\xbf[train]\nsteps = 3\n")
    assert read_config_file(path)[1] == {"train": {"steps": 3}}


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "big"])
def test_size_cap(target, tmp_path):
    path = tmp_path / "settings.toml"
    if target == "big":
        path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    else:
        os.symlink(target, path)
    with pytest.raises(ConfigError, match=str(path)):
        read_config_file(path)


def test_tilde_in_a_config_file_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "settings.toml"
    path.write_text('[run]\nout = "~/runs/x"\ndata_dir = "~/data"\ndataset = "folder:~/img"\n')
    _, values = read_config_file(path)
    assert values["run"] == {"out": f"{tmp_path}/runs/x", "data_dir": f"{tmp_path}/data",
                             "dataset": f"folder:{tmp_path}/img"}


def test_the_out_of_memory_handler_survives_an_empty_message(monkeypatch, capsys):
    def no_memory(args):
        raise MemoryError()  # what reading /dev/zero whole raises

    monkeypatch.setattr(cli_main, "cmd_distances", no_memory)  # build_parser reads it
    assert cli_main.main(["distances"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory (MemoryError)" in err[0]
