"""`wganlab reproduce`: the seed preset's run beside the book's log (2 tiny epochs here)."""

import json

import pytest

from wganlab.bench.tutorial import epoch_means, pick_dataset
from wganlab.cli import main
from wganlab.reporting.book_log import STEPS_PER_EPOCH, book_epochs


def test_book_log_is_the_tutorials():
    rows = book_epochs()
    assert [r["epoch"] for r in rows] == list(range(1, 101)) and STEPS_PER_EPOCH == 468
    assert rows[0] == {"epoch": 1, "minutes": 1.58, "g_loss": 186.47, "d_loss": -305.89,
                       "d_real": -204.71, "d_fake": -186.47}
    assert rows[-1] == {"epoch": 100, "minutes": 159.9, "g_loss": 7301.76, "d_loss": -1722.93,
                        "d_real": 5541.48, "d_fake": -7301.76}
    # The tutorial's G loss is -E[D(G(z))] and its D-Fake E[D(G(z))]: opposite every epoch.
    assert all(r["g_loss"] == -r["d_fake"] for r in rows)


def test_epoch_means_are_the_tutorials_epoch_line():
    rows = [{"step": 1, "epoch": 1, "time": 30.0, "g_loss": 1.0, "d_loss": -2.0,
             "d_real": 4.0, "d_fake": -1.0},
            {"step": 2, "epoch": 1, "time": 60.0, "g_loss": 3.0, "d_loss": -4.0,
             "d_real": 2.0, "d_fake": -3.0},
            {"step": 3, "epoch": 2, "time": 90.0, "g_loss": 5.0, "d_loss": 0.0,
             "d_real": 0.5, "d_fake": -5.0}]
    first, second = epoch_means(rows)
    assert first == {"epoch": 1, "minutes": 1.0, "g_loss": 2.0, "d_loss": -3.0,
                     "d_real": -3.0, "d_fake": -2.0, "steps": 2}
    assert second["epoch"] == 2 and second["steps"] == 1 and second["d_real"] == -0.5


def test_dataset_is_mnist_only_when_its_files_are_here(tmp_path, monkeypatch):
    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr("wganlab.data.sources.SYSTEM_DIRS", {})
    assert pick_dataset(empty) == "fashion-mnist"
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (empty / name).write_bytes(b"")
    assert pick_dataset(empty) == "mnist"


@pytest.mark.slow
def test_reproduce_writes_the_table_and_the_curve(tmp_path, capsys):
    run = tmp_path / "tutorial"
    code = main(["reproduce", "--out", str(run), "--dataset", "synthetic", "--epochs", "2",
                 "--batch-size", "256", "--g-filters", "16", "--c-filters", "8",
                 "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "seed preset, 2 epochs on synthetic" in out and "tutorial.md" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "seed" and cfg["model"]["padding"] == "keras"
    assert cfg["train"]["adam_eps_form"] == "keras" and cfg["train"]["shuffle_buffer"] == 10000
    data = json.loads((run / "tutorial.json").read_text())
    # synthetic: 1024 images / batch 256 = 4 steps per epoch.
    assert [(r["epoch"], r["steps"]) for r in data["ours"]] == [(1, 4), (2, 4)]
    assert data["book"][0]["g_loss"] == 186.47 and len(data["book"]) == 100
    table = (run / "tutorial.md").read_text()
    assert "on **synthetic**" in table and "And synthetic is not MNIST." in table
    lines = [line for line in table.splitlines() if line.startswith("| 1 ")]
    assert lines and "| 186.47 / -305.89 | -204.71 / -186.47 |" in lines[0]
    first = data["ours"][0]
    assert f"| {first['g_loss']:.2f} / {first['d_loss']:.2f} |" in lines[0]
    assert "46,800 iterations" in table
    assert (run / "tutorial_curve.png").stat().st_size > 10_000
