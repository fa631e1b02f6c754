"""Defect 6: `--resume PATH` continues only a checkpoint of this run's own config; one from a
run with another training config is refused, naming the fields. `--init-from PATH` takes its
network weights only, with new optimizers, step 0 and this run's config.
"""

import json

from wganlab.base import checkpoint
from wganlab.config import get_preset
from wganlab.errors import ConfigError
from wganlab.training.resume import differences

from .runs import state_at, train_argv


def test_another_runs_checkpoint_is_refused(reference, tmp_path, cli):
    theirs = checkpoint.checkpoint_path(reference("wgan-gp"), 24)
    run = tmp_path / "mine"
    code, out, err = cli(*train_argv("wgan-gp", run, 30, "--resume", theirs, "--g-lr", 3e-4,
                                     "--gp-weight", 5))
    assert code == ConfigError.exit_code, (out, err)
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert "train.g_lr" in line and "train.gp_weight" in line and "--init-from" in line
    assert str(theirs) in line and not (run / "checkpoints").exists()


def test_the_same_config_may_resume_another_folders_checkpoint(reference, tmp_path, cli):
    """A copy of the run elsewhere (same config; only run length differs) still resumes."""
    theirs = checkpoint.checkpoint_path(reference("wgan-gp"), 24)
    code, out, err = cli(*train_argv("wgan-gp", tmp_path / "copy", 25, "--resume", theirs))
    assert code == 0, err
    assert state_at(tmp_path / "copy", 25)["step"] == 25


def test_init_from_takes_the_weights_only(reference, tmp_path, cli):
    theirs = checkpoint.checkpoint_path(reference("wgan-gp"), 24)
    start = checkpoint.load(theirs)
    run = tmp_path / "mine"
    code, out, err = cli(*train_argv("wgan-gp", run, 1, "--init-from", theirs,
                                     "--g-lr", 3e-4))
    assert code == 0, err
    state = state_at(run, 1)
    assert state["step"] == 1 and state["config"]["train"]["g_lr"] == 3e-4
    # Fresh optimizers: Adam has taken this run's updates only (1 generator, 5 critic).
    assert all(s["step"] == 1 for s in state["g_optimizer"]["state"].values())
    assert all(s["step"] == 5 for s in state["c_optimizer"]["state"].values())
    # One Adam step moves each weight by about the learning rate at most: the generator
    # started from the checkpoint's weights, not from a fresh initialisation.
    for name, weight in start["generator"].items():
        if weight.is_floating_point() and "running" not in name:
            assert (state["generator"][name] - weight).abs().max() <= 2 * 3e-4, name
    info = json.loads((run / "run.json").read_text())
    assert info["init_from"] == str(theirs)
    assert json.loads((run / "config.json").read_text())["train"]["g_lr"] == 3e-4


def test_init_from_and_resume_together_is_an_error(reference, tmp_path, cli):
    theirs = checkpoint.checkpoint_path(reference("wgan-gp"), 24)
    code, _, err = cli(*train_argv("wgan-gp", tmp_path / "x", 2, "--init-from", theirs,
                                   "--resume", theirs))
    assert code == 2 and "--init-from" in err and "--resume" in err, err


def test_init_from_a_different_model_is_refused(reference, tmp_path, cli):
    theirs = checkpoint.checkpoint_path(reference("wgan-gp"), 24)
    code, _, err = cli(*train_argv("wgan-gp", tmp_path / "x", 2, "--init-from", theirs,
                                   "--g-filters", 16))
    assert code != 0 and str(theirs) in err and len(err.strip().splitlines()) == 1, err


def test_which_fields_count():
    cfg = get_preset("wgan-gp")
    cfg.model.image_shape = (1, 8, 8)
    saved = cfg.to_dict()
    saved["train"]["betas"] = list(saved["train"]["betas"])  # as JSON would give them back
    saved["train"]["steps"], saved["run"]["keep_last"] = 99, 9  # run length and logging
    assert differences(saved, cfg) == []
    saved["train"]["c_lr"], saved["model"]["z_dim"] = 1.0, 3
    saved["run"]["dataset"] = "mnist"
    found = differences(saved, cfg)
    assert [f.split(":")[0] for f in found] == ["model.z_dim", "train.c_lr", "run.dataset"]
    assert found[1] == "train.c_lr: 1.0 there, 0.0001 here"


def test_init_from_a_missing_file_is_named_before_anything_runs(tmp_path, cli):
    missing = tmp_path / "nowhere.pt"
    code, _, err = cli("train", "--dry-run", "--init-from", missing, "--out", tmp_path / "x")
    assert code == 2 and f"--init-from: {missing}: no such checkpoint file" in err, err
    assert not (tmp_path / "x").exists()
