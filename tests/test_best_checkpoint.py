"""`--checkpoint best`: the checkpoint of the lowest FID measured along a run (--eval-every)
outlives --keep-last, across resume, and generate, evaluate, export and the Python API load it
by that name."""

import math

import pytest

from wganlab.base.checkpoint import checkpoint_path, list_checkpoints
from wganlab.cli import main
from wganlab.errors import CheckpointError
from wganlab.generate import load_generator
from wganlab.runfiles import best_evaluation


def test_best_evaluation_is_the_lowest_finite_fid_and_the_earliest_of_equals():
    rows = [{"step": 1, "g_loss": 0.5},  # a training row: no FID
            {"step": 2, "eval": True, "fid": 9.0},
            {"step": 3, "eval": True, "fid": math.nan},
            {"step": 4, "eval": True, "fid": 4.0},
            {"step": 5, "eval": True, "fid": -math.inf},
            {"step": 6, "eval": True, "fid": 4.0},
            {"step": 7, "fid": 1.0}]  # not an evaluation row
    assert best_evaluation(rows)["step"] == 4
    assert best_evaluation(rows[:1]) is None and best_evaluation([]) is None


def _steps(run) -> list[int]:
    return sorted(int(p.name[5:13]) for p in list_checkpoints(run))


@pytest.mark.slow
def test_the_best_checkpoint_is_kept_through_resume_and_loaded_by_name(
        stub_evaluator, tmp_path, tiny_flags, monkeypatch, capsys):
    from wganlab.metrics import evaluate

    real, fids = evaluate.evaluate_images, iter([5.0, 2.0, 4.0, 3.0, 6.0, 7.0, 8.0])

    def scripted(*args, **kwargs):  # the evaluator's record, with the FIDs of this script
        return {**real(*args, **kwargs), "fid": next(fids)}

    monkeypatch.setattr(evaluate, "evaluate_images", scripted)
    run = tmp_path / "run"
    flags = ["--eval-every", "1", "--eval-n", "32", "--keep-last", "1", "--out", str(run),
             *tiny_flags]
    assert main(["train", "--steps", "5", *flags]) == 0
    assert "lowest FID 2.0 at step 2: its checkpoint is kept" in capsys.readouterr().out
    assert _steps(run) == [2, 5]  # step 2 was no epoch end: saved when its FID came
    assert main(["train", "--steps", "7", "--resume", *flags]) == 0
    assert _steps(run) == [2, 7]  # the rows read back on resume still name step 2

    assert main(["generate", str(run), "--checkpoint", "best", "--n", "4",
                 "--out", str(tmp_path / "grid.png")]) == 0
    assert str(checkpoint_path(run, 2)) in capsys.readouterr().out
    assert load_generator(run, checkpoint="best").provenance["step"] == 2


def test_checkpoint_best_errors_name_what_is_missing(tiny_run, tmp_path, capsys):
    plain = tiny_run()  # trained without --eval-every
    assert main(["generate", str(plain), "--checkpoint", "best"]) == 4
    assert "has no evaluations; train with --eval-every N" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="has no evaluations"):
        load_generator(plain, checkpoint="best")  # the Python API reads the same name
    assert main(["export", str(tmp_path), "--checkpoint", "best",
                 "--out", str(tmp_path / "x.safetensors")]) == 4
    assert "is not a run directory" in capsys.readouterr().err

    gone = tmp_path / "gone"
    (gone / "checkpoints").mkdir(parents=True)
    (gone / "metrics.jsonl").write_text('{"step": 4, "eval": true, "fid": 3.5}\n')
    assert main(["evaluate", str(gone), "--checkpoint", "best"]) == 4
    err = capsys.readouterr().err
    assert "step-00000004.pt (FID 3.50 at step 4) is gone" in err and len(err.splitlines()) == 1
