"""Issue 21: `evaluate A --checkpoint B/checkpoints/...` writes B's score beside B's run (or
where --out says), never into A/eval.json; A's model card never quotes another run's FID;
`compare exp1/fast exp2/fast` draws two curves, not one."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

from wganlab.hub import export_folder
from wganlab.metrics.compare import compare, labels
from wganlab.metrics.evaluate import eval_path

from .conftest import make_run

evaluate = importlib.import_module("wganlab.metrics.evaluate")


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Runs A and B (a checkpoint each), with the metrics stubbed: no evaluator needed."""
    monkeypatch.setattr(evaluate, "evaluate_images",
                        lambda fake, *a, **k: {"fid": float(fake.float().mean()),
                                               "n_fake": len(fake), "reference": "stub"})
    a, b = make_run(tmp_path / "A"), make_run(tmp_path / "B")
    (a / "eval.json").write_text(json.dumps({"fid": 1.0, "checkpoint": str(
        next((a / "checkpoints").iterdir()))}))
    return a, b


def test_another_runs_checkpoint_is_scored_beside_its_own_run(runs):
    a, b = runs
    before = (a / "eval.json").read_text()
    theirs = next((b / "checkpoints").iterdir())
    record = evaluate.evaluate_run(a, theirs, n=4)
    assert (a / "eval.json").read_text() == before
    written = json.loads((b / "eval.json").read_text())
    assert written["checkpoint"] == str(theirs) and record["run"] == str(b)


def test_out_takes_the_record_anywhere(runs, tmp_path):
    a, b = runs
    before = (a / "eval.json").read_text()
    evaluate.evaluate_run(a, next((b / "checkpoints").iterdir()), n=4, out=tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text())["run"] == str(b)
    assert (a / "eval.json").read_text() == before and not (b / "eval.json").exists()


@pytest.mark.parametrize("where", ["loose", "export"])
def test_a_file_outside_any_run_writes_no_runs_eval(runs, tmp_path, where):
    a, _ = runs
    loose = tmp_path / where / "x.pt"
    loose.parent.mkdir()
    shutil.copy(next((a / "checkpoints").iterdir()), loose)
    assert eval_path(a, loose) is None
    assert eval_path(a, next((a / "checkpoints").iterdir())) == a / "eval.json"


def test_a_card_quotes_only_its_own_runs_evaluation(runs, tmp_path):
    a, b = runs
    (a / "eval.json").write_text(json.dumps({"fid": 77.5, "checkpoint": str(
        next((b / "checkpoints").iterdir()))}))
    card = (export_folder(a, tmp_path / "card") / "README.md").read_text()
    assert "77.5" not in card and "Not measured" in card


def test_compare_tells_runs_with_one_folder_name_apart(tmp_path):
    runs = []
    for parent in ("exp1", "exp2"):
        run = tmp_path / parent / "fast"
        run.mkdir(parents=True)
        (run / "eval.json").write_text(json.dumps({"fid": 3.0, "train_seconds": 1.0,
                                                   "step": 5}))
        runs.append(run)
    assert labels(runs) == ["exp1/fast", "exp2/fast"]
    assert len(set(labels([runs[0], runs[0]]))) == 2  # one run named twice: two names
    table, _ = compare([str(r) for r in runs], tmp_path / "out")
    assert table.count("fast") == 2
