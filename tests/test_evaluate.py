import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wganlab.cli import main
from wganlab.metrics import evaluate


def _sym_sqrt(s):
    values, vectors = np.linalg.eigh(s)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _by_hand(ev, real_uint8, fake_uint8):
    """FID (brute force, by eigendecompositions), classes and confidence from the evaluator's
    own forward pass: no wganlab metric helper involved."""
    with torch.no_grad():
        f_real, _ = ev(real_uint8.double().div(127.5).sub(1).float())
        f_fake, logits = ev(fake_uint8.double().div(127.5).sub(1).float())
    a, b = f_real.double().numpy(), f_fake.double().numpy()
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _sym_sqrt(s1)
    fid = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1) + np.trace(s2)
           - 2 * np.trace(_sym_sqrt(root @ s2 @ root)))
    probs = torch.softmax(logits.double(), 1)
    share = torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double() / len(probs)
    return fid, int((share >= 1 / (2 * probs.shape[1])).sum()), probs.max(1).values.mean()


def test_provenance_of_images(stub_evaluator):
    from wganlab.data import load_dataset

    fake = load_dataset("synthetic", "train").images[:300]
    record = evaluate.evaluate_images(fake, "synthetic", seed=3)
    assert record["n_real"] == 256 and record["n_fake"] == 300
    assert record["reference"] == "synthetic:test" and record["seed"] == 3
    assert record["evaluator"] == "stub-cnn" and record["evaluator_sha256"] == "ab" * 32
    assert record["evaluator_test_accuracy"] == 0.5
    fid, modes, confidence = _by_hand(stub_evaluator, load_dataset("synthetic", "test").images,
                                      fake)
    assert record["fid"] == pytest.approx(fid, rel=1e-5, abs=1e-8)
    assert record["modes_covered"] == modes
    assert record["mean_confidence"] == pytest.approx(float(confidence), rel=1e-6)


@pytest.mark.slow
def test_real_floor_is_below_noise(stub_evaluator):
    floor = evaluate.evaluate_real("synthetic", n=256, seed=0)
    noise = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8)
    worse = evaluate.evaluate_images(noise, "synthetic")
    assert floor["fid"] < worse["fid"] / 10
    assert floor["run"] == "real:synthetic:train"


@pytest.mark.slow
def test_eval_during_training_evaluate_and_compare(stub_evaluator, tmp_path, tiny_flags, capsys):
    runs = []
    for name, n in (("a", 64), ("b", 32)):
        run = tmp_path / name
        assert main(["train", "--steps", "4", "--eval-every", "2", "--eval-n", "64",
                     "--out", str(run), *tiny_flags]) == 0
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in rows if r.get("eval")]
        assert [r["step"] for r in evals] == [2, 4] and all(r["n_fake"] == 64 for r in evals)
        assert evals[0]["fid"] != evals[1]["fid"]  # the generator changed between them
        assert Image.open(run / "fid_curve.png").size[0] > 100
        assert main(["evaluate", str(run), "--n", str(n), "--bootstrap", "5"]) == 0
        saved = json.loads((run / "eval.json").read_text())
        assert saved["step"] == 4 and saved["n_fake"] == n
        assert saved["fid_low"] <= saved["fid"] <= saved["fid_high"]
        if n == 64:  # the same samples (seed 0) of the same weights as the step-4 evaluation
            for key in ("fid", "kid_mean", "precision", "recall", "coverage", "modes_covered"):
                assert saved[key] == pytest.approx(evals[1][key], rel=1e-9), key
        assert saved["checkpoint"].endswith("step-00000004.pt") and saved["train_seconds"] > 0
        runs.append(str(run))
    capsys.readouterr()
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "runs differ in n_fake (32, 64)" in out
    table = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert [row["run"] for row in table] == runs
    for row, run in zip(table, runs):
        saved = json.loads((Path(run) / "eval.json").read_text())
        assert float(row["fid"]) == pytest.approx(saved["fid"], rel=1e-12)
        assert int(row["n_fake"]) == saved["n_fake"] and row["step"] == "4"
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(runs)
    assert "runs differ in n_fake" in md
    assert Image.open(tmp_path / "cmp" / "compare_fid.png").size[0] > 100


def test_evaluate_needs_a_run(capsys):
    assert main(["evaluate"]) == 2
    assert "--real" in capsys.readouterr().err
