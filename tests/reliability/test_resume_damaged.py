"""Defect 2: `--resume` never silently discards work. With every checkpoint damaged it
refuses (naming them) and changes nothing; damaged checkpoints newer than the one it resumes
from are moved aside with the metrics rows they covered, so they can neither be pruned into
nor prune the checkpoints the resumed run writes.
"""

import pytest

from wganlab.base import checkpoint
from wganlab.errors import CheckpointError
from wganlab.training import resume

from .runs import (
    all_rows,
    assert_same_state,
    compare_rows,
    loss_rows,
    state_at,
    steps_on_disk,
    train_argv,
)


def damage(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a disk error or a bad copy leaves


def snapshot(run) -> dict:
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def test_every_checkpoint_damaged_is_refused_and_nothing_changes(tmp_path, cli):
    run = tmp_path / "run"
    assert cli(*train_argv("wgan-gp", run, 9, "--checkpoint-every", 3))[0] == 0
    assert steps_on_disk(run) == [3, 6, 9]
    for step in (3, 6, 9):
        damage(checkpoint.checkpoint_path(run, step))
    before = snapshot(run)
    code, out, err = cli(*train_argv("wgan-gp", run, 12, "--resume", "--checkpoint-every", 3))
    assert code == CheckpointError.exit_code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(f"step-0000000{s}.pt" in lines[0] for s in (3, 6, 9)), lines[0]
    assert snapshot(run) == before  # no row, no checkpoint, no file touched


@pytest.mark.slow
def test_damaged_newer_checkpoints_are_kept_aside_not_pruned_into(tmp_path, cli, reference):
    """Resume from step 3 past damaged 6 and 9 with --keep-last 3: before the fix the new
    checkpoints 4 and 5 ranked below the damaged ones, and pruning deleted 3 and 4."""
    run = tmp_path / "run"
    assert cli(*train_argv("wgan-gp", run, 9, "--checkpoint-every", 3))[0] == 0
    rows_before = all_rows(run)
    damage(checkpoint.checkpoint_path(run, 6))
    damage(checkpoint.checkpoint_path(run, 9))
    code, out, err = cli(*train_argv("wgan-gp", run, 5, "--resume", "--checkpoint-every", 1,
                                     "--keep-last", 3))
    assert code == 0, err
    assert steps_on_disk(run) == [3, 4, 5]
    for step in (3, 4, 5):
        assert state_at(run, step)["step"] == step
    aside = run / "checkpoints" / resume.ASIDE
    assert sorted(p.name for p in aside.iterdir()) == [
        "metrics-after-step-00000003.jsonl", "step-00000006.pt", "step-00000009.pt"]
    said = out + err
    assert "step-00000006.pt" in said and "step-00000009.pt" in said and str(aside) in said
    kept = [line for line in (aside / "metrics-after-step-00000003.jsonl").read_text()
            .splitlines()]
    assert len(kept) == len([r for r in rows_before if r.get("step", 0) > 3]) > 0

    # The run goes on exactly: resumed from 3, it matches a run that never stopped.
    end = 24
    assert cli(*train_argv("wgan-gp", run, end, "--resume"))[0] == 0
    compare_rows(loss_rows(run), loss_rows(reference("wgan-gp")))
    assert_same_state(state_at(run, end), state_at(reference("wgan-gp"), end))
