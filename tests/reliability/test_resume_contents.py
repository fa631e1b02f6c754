"""Issue 21: resume trusts what files hold, not what they are called. The newest checkpoint is
the one holding the highest step, and a name that disagrees with its step is refused; metrics
with no checkpoint to continue are refused with the choices, nothing truncated; a config.json
edited away from its checkpoint's config, or a checkpoint from a newer wganlab with settings
this one does not know, is refused naming them. Each refusal changes no file."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.base import checkpoint

FAST = dict(max_examples=6, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()
            and p.name != ".lock"}


def copy(reference, where: Path) -> Path:
    run = where / "run"
    shutil.copytree(reference("wgan-gp"), run)  # checkpoints at steps 12 and 24
    return run


@settings(**FAST)
@given(real=st.sampled_from([12, 24]), fake=st.integers(25, 10**7))
def test_a_renamed_checkpoint_is_refused_naming_its_true_step(real, fake, reference, cli):
    with tempfile.TemporaryDirectory() as tmp:
        run = copy(reference, Path(tmp))
        checkpoint.checkpoint_path(run, real).rename(checkpoint.checkpoint_path(run, fake))
        before = snapshot(run)
        code, _, err = cli("train", "--resume", "--out", run, "--steps", 30, "--keep-last", 1,
                           "--no-progress")
        assert code == 4 and f"holds step {real}" in err and f"step-{fake:08d}.pt" in err
        assert snapshot(run) == before


def test_metrics_without_a_checkpoint_are_refused_and_kept(reference, tmp_path, cli):
    run = copy(reference, tmp_path)
    for path in checkpoint.list_checkpoints(run)[1:]:
        path.unlink()
    checkpoint.list_checkpoints(run)[0].rename(run / "checkpoints" / "best.pt")
    before = snapshot(run)
    code, _, err = cli("train", "--resume", "--out", run, "--steps", 30, "--no-progress")
    assert code == 4 and "best.pt" in err and "--resume" in err and "metrics.jsonl" in err
    assert snapshot(run) == before  # metrics.jsonl not truncated to step 0


def test_a_run_stopped_before_its_first_checkpoint_starts_again(reference, tmp_path, cli):
    run = copy(reference, tmp_path)
    shutil.rmtree(run / "checkpoints")
    rows = (run / "metrics.jsonl").read_text().splitlines()[:5]  # steps 1-5 of a 12-step epoch
    (run / "metrics.jsonl").write_text("".join(r + "\n" for r in rows))
    code, _, err = cli("train", "--resume", "--out", run, "--steps", 12, "--no-progress")
    assert code == 0, err


# Fields that define the run, with another value each passes validation.
EDITS = [("train", "g_lr", 0.01), ("train", "gp_weight", 0.0), ("model", "padding", "keras"),
         ("train", "n_critic", 2), ("train", "c_lr", 3e-4), ("model", "slope", 0.3)]


@settings(**FAST)
@given(edits=st.lists(st.sampled_from(EDITS), min_size=1, max_size=2, unique=True))
def test_an_edited_config_json_is_refused_naming_the_fields(edits, reference, cli):
    with tempfile.TemporaryDirectory() as tmp:
        run = copy(reference, Path(tmp))
        saved = json.loads((run / "config.json").read_text())
        for section, name, value in edits:
            saved[section][name] = value
        (run / "config.json").write_text(json.dumps(saved))
        before = snapshot(run)
        code, _, err = cli("train", "--resume", "--out", run, "--steps", 30, "--no-progress")
        assert code == 2 and all(f"{s}.{n}" in err for s, n, _ in edits), err
        assert snapshot(run) == before


def test_a_newer_versions_checkpoint_with_unknown_settings_is_refused(reference, tmp_path,
                                                                       cli):
    run = copy(reference, tmp_path)
    newest = checkpoint.list_checkpoints(run)[0]
    state = torch.load(newest, weights_only=True)
    state["version"], state["config"]["train"]["warp_drive"] = "9.0.0", True
    checkpoint.save(state, newest)
    before = snapshot(run)
    for argv in (["--resume"], ["--resume", newest]):
        code, _, err = cli("train", *argv, "--out", run, "--steps", 30, "--no-progress")
        assert code == 4 and "9.0.0" in err and "train.warp_drive" in err, err
    assert snapshot(run) == before
