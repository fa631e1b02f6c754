"""`wganlab train --config FILE`: a run's own config.json repeats it exactly, flags override the
file, and a bad key or value is one line naming the file, the key and what is allowed."""

import json

import pytest

from wganlab import config as C
from wganlab.cli import main


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run("dcgan", 2, "--seed", 7)


def dry_run(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(["train", *map(str, argv), "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def error(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["train", *map(str, argv), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_a_runs_config_json_resolves_to_the_same_config(run, capsys):
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "dcgan" and saved["train"]["seed"] == 7  # not the defaults
    assert dry_run(capsys, "--config", run / "config.json") == saved


def test_training_from_a_runs_config_repeats_it(run, tmp_path):
    again = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.json"), "--out", str(again)]) == 0
    first, second = (json.loads((d / "config.json").read_text()) for d in (run, again))
    assert second["run"].pop("out") == str(again)
    first["run"].pop("out")
    assert first == second
    losses = [[json.loads(line)["g_loss"] for line in open(d / "metrics.jsonl")]
              for d in (run, again)]
    assert losses[0] == losses[1]  # the same seed and settings: the same run


def test_flags_override_the_file_and_the_file_overrides_the_preset(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('preset = "wgan"\n[train]\nsteps = 30\nn_critic = 3\ngp_weight = 4\n'
                    '[model]\nimage_shape = [1, 16, 16]\n[run]\nout = "runs/from-file"\n')
    cfg = dry_run(capsys, "--config", path, "--n-critic", 2)
    assert cfg["preset"] == "wgan" and cfg["train"]["optimizer"] == "rmsprop"  # the preset's
    assert cfg["train"]["steps"] == 30 and cfg["train"]["gp_weight"] == 4.0  # the file's
    assert cfg["model"]["image_shape"] == [1, 16, 16] and cfg["run"]["out"] == "runs/from-file"
    assert cfg["train"]["n_critic"] == 2  # the flag's
    assert dry_run(capsys, "--config", path, "--preset", "dcgan")["train"]["loss"] == \
        "non-saturating"


def test_json_and_toml_give_the_same_config(tmp_path, capsys):
    toml, js = tmp_path / "a.toml", tmp_path / "a.json"
    toml.write_text('[train]\nbetas = [0.5, 0.99]\nclip = 0.02\n[run]\nout = "x"\n')
    js.write_text(json.dumps({"train": {"betas": [0.5, 0.99], "clip": 0.02},
                              "run": {"out": "x"}}))
    assert dry_run(capsys, "--config", toml) == dry_run(capsys, "--config", js)


@pytest.mark.parametrize("text, expected", [
    ('[train]\nlr = 0.1\n', "unknown key train.lr; allowed in [train]: loss, "),
    ('[training]\nsteps = 1\n', "unknown key 'training'; allowed at the top: preset, model"),
    ('[train]\nloss = "wgan-gpp"\n',
     "train.loss = 'wgan-gpp': allowed values are wasserstein, hinge, non-saturating, minimax, "
     "wgan-gp, wgan, gan-ns, gan-minimax"),
    ('[train]\nbatch_size = "big"\n', "train.batch_size = 'big': expected an integer"),
    ('[train]\nbatch_size = 1.5\n', "train.batch_size = 1.5: expected an integer"),
    ('[train]\nshared_step = 1\n', "train.shared_step = 1: expected true or false"),
    ('[model]\nimage_shape = [1, 28]\n', "model.image_shape = [1, 28]: expected three integers"),
    ('[train]\nn_critic = 0\n', "train.n_critic = 0: must be in [1, 100]; got 0"),  # range, after
    ('preset = "wgangp"\n', "preset = 'wgangp': allowed values are seed, wgan-gp, dcgan"),
    ('[train]\nsteps = \n', "not valid TOML"),
    ('[run]\ndataset = "user"\n', "--dataset: 'user' marks images given from Python"),
])
def test_bad_keys_and_values_name_the_file_and_the_key(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    err = error(capsys, "--config", path)
    assert expected in err
    if "--dataset" not in expected:
        assert str(path) in err


def test_a_bad_value_overridden_by_a_flag_is_not_an_error(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"n_critic": 0}, "run": {"out": "x"}}))
    assert dry_run(capsys, "--config", path, "--n-critic", 1)["train"]["n_critic"] == 1
    err = error(capsys, "--config", path, "--batch-size", 1)  # a flag's own error names it
    assert "--batch-size" in err or str(path) in err


def test_missing_file_and_unknown_format(tmp_path, capsys):
    assert "cannot read it" in error(capsys, "--config", tmp_path / "nope.toml")
    (tmp_path / "c.yaml").write_text("train: {}")
    assert "give a .toml or .json file" in error(capsys, "--config", tmp_path / "c.yaml")


@pytest.mark.parametrize("old, loss, penalty", [
    ("wgan-gp", "wasserstein", "gp"), ("wgan", "wasserstein", "none"),
    ("gan-ns", "non-saturating", "none"), ("gan-minimax", "minimax", "none"),
    ("hinge", "hinge", "none")])
def test_a_config_of_an_earlier_version_means_what_it_meant(old, loss, penalty):
    """config.json and checkpoints written before the loss/penalty split and the speed
    section: the legacy loss name is the loss and penalty it meant; speed takes defaults."""
    saved = C.get_preset("wgan-gp").to_dict()
    del saved["train"]["penalty"], saved["speed"]
    saved["train"]["loss"] = old
    cfg = C.Config.from_dict(saved)
    assert (cfg.train.loss, cfg.train.penalty) == (loss, penalty)
    assert cfg.speed == C.SpeedConfig()


def test_the_legacy_loss_flag_still_works_and_a_given_penalty_wins(capsys, tmp_path):
    cfg = dry_run(capsys, "--preset", "fast", "--loss", "wgan", "--out", tmp_path / "a")
    assert (cfg["train"]["loss"], cfg["train"]["penalty"]) == ("wasserstein", "none")
    cfg = dry_run(capsys, "--preset", "dcgan", "--loss", "wgan-gp", "--penalty", "r1",
                  "--out", tmp_path / "b")
    assert (cfg["train"]["loss"], cfg["train"]["penalty"]) == ("wasserstein", "r1")
