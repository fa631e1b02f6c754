import json

import pytest
import torch

from wganlab.cli import main
from wganlab.metrics import Evaluator, evaluate


@pytest.fixture
def stub_evaluator(monkeypatch):
    """An untrained CNN evaluator with provenance, so no weights are trained or read."""
    torch.manual_seed(0)
    ev = Evaluator(feature_dim=16, width=4).eval().requires_grad_(False)
    ev.info = {"architecture": {"name": "stub-cnn"}, "dataset": "synthetic",
               "sha256": "ab" * 32, "test_accuracy": 0.5}
    monkeypatch.setattr(evaluate, "get_evaluator", lambda *a, **k: ev)
    evaluate._REFERENCE_CACHE.clear()
    return ev


def test_provenance_of_images(stub_evaluator):
    from wganlab.data import load_dataset

    fake = load_dataset("synthetic", "train").images[:300]
    record = evaluate.evaluate_images(fake, "synthetic", seed=3)
    assert record["n_real"] == 256 and record["n_fake"] == 300
    assert record["reference"] == "synthetic:test" and record["seed"] == 3
    assert record["evaluator"] == "stub-cnn" and record["evaluator_sha256"] == "ab" * 32
    assert record["evaluator_test_accuracy"] == 0.5
    assert record["fid"] >= 0 and record["modes_covered"] is not None


def test_real_floor_is_below_noise(stub_evaluator):
    floor = evaluate.evaluate_real("synthetic", n=256, seed=0)
    noise = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8)
    worse = evaluate.evaluate_images(noise, "synthetic")
    assert floor["fid"] < worse["fid"] / 10
    assert floor["run"] == "real:synthetic:train"


def test_eval_during_training_evaluate_and_compare(stub_evaluator, tmp_path, tiny_flags, capsys):
    runs = []
    for name, n in (("a", 64), ("b", 32)):
        run = tmp_path / name
        assert main(["train", "--steps", "4", "--eval-every", "2", "--eval-n", "64",
                     "--out", str(run), *tiny_flags]) == 0
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in rows if r.get("eval")]
        assert [r["step"] for r in evals] == [2, 4] and all(r["fid"] > 0 for r in evals)
        assert (run / "fid_curve.png").exists()
        assert main(["evaluate", str(run), "--n", str(n), "--bootstrap", "5"]) == 0
        saved = json.loads((run / "eval.json").read_text())
        assert saved["step"] == 4 and saved["n_fake"] == n and saved["fid_low"] <= saved["fid"]
        assert saved["checkpoint"].endswith("step-00000004.pt") and saved["train_seconds"] > 0
        runs.append(str(run))
    capsys.readouterr()
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "runs differ in n_fake" in out
    for name in ("compare.md", "compare.csv", "compare_fid.png"):
        assert (tmp_path / "cmp" / name).stat().st_size > 0


def test_evaluate_needs_a_run(capsys):
    assert main(["evaluate"]) == 2
    assert "--real" in capsys.readouterr().err
