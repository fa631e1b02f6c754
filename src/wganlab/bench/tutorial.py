"""The tutorial's run, reproduced: train the `seed` preset, then set its epoch lines and its
learning curve beside the book's (reporting/book_log.py).

The comparison is of kind, not of digits: the networks, losses, optimizer and data order are
the tutorial's (tests/test_keras_oracle.py checks them against Keras), but the random streams
(initial weights, z, penalty alphas, dropout masks, the shuffle) are PyTorch's, so no run
retraces the book's numbers; and without MNIST's files the data set is Fashion-MNIST.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..base.files import atomic_write, write_json  # noqa: E402
from ..config import Config, apply_overrides, check_resume, get_preset, validate  # noqa: E402
from ..errors import DataError  # noqa: E402
from ..reporting.book_log import STEPS_PER_EPOCH, book_epochs  # noqa: E402
from ..reporting.plots import read_metrics  # noqa: E402

TABLE, FIGURE, DATA = "tutorial.md", "tutorial_curve.png", "tutorial.json"
NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic"}

BOOK_FIGURE = (
    "The book's learning-curve figure is not in the web copy (an image placeholder); its "
    "plotting code and log describe it: the generator and critic losses of all 46,800 "
    "iterations (468 per epoch) on one axis, a second axis below marking epochs 1, 20, 40, "
    "60, 80 and 100. From the log, the generator loss falls from 186 (epoch 1) to its lowest, "
    "37, in epoch 5, then climbs steadily into the thousands (7,302 in epoch 100); the critic "
    "loss, -306 in epoch 1, stays between -69 and +16 in epochs 2-50, then falls to -1,723 "
    "(with one jump to +156 in epoch 70); D-Real = -E[D(x)] is positive from epoch 5 on and "
    "grows with the generator loss: the critic's scores run away, which the gradient penalty "
    "does not stop with BatchNorm in the critic.")


def pick_dataset(data_dir=None) -> str:
    """The tutorial's MNIST if its files are here (no download), else Fashion-MNIST."""
    from ..data import sources

    try:
        sources.locate("mnist", "train", data_dir, download=False)
        return "mnist"
    except DataError:
        return "fashion-mnist"


def tutorial_config(overrides: dict, resume: bool = False) -> Config:
    """The seed preset for 100 epochs into runs/tutorial, with the given flag overrides; with
    resume, the saved config of that run (only run-length and logging flags may change)."""
    overrides = {k: dict(v) for k, v in overrides.items()}
    run = overrides.setdefault("run", {})
    run.setdefault("out", "runs/tutorial")
    saved = Path(run["out"]) / "config.json"
    if resume and saved.exists():
        cfg = Config.from_dict(json.loads(saved.read_text()))
        check_resume(cfg, overrides)
        return validate(apply_overrides(cfg, overrides))
    run.setdefault("dataset", pick_dataset(run.get("data_dir")))
    return validate(apply_overrides(get_preset("seed"), overrides))


def epoch_means(rows: list[dict]) -> list[dict]:
    """The tutorial's epoch line from per-step metrics: means of G, D, -E[D(x)], E[D(G(z))],
    and the training minutes at the epoch's last step."""
    epochs: dict[int, list[dict]] = {}
    for row in rows:
        epochs.setdefault(int(row["epoch"]), []).append(row)
    out = []
    for epoch, group in sorted(epochs.items()):
        n = len(group)
        out.append({"epoch": epoch, "minutes": max(r["time"] for r in group) / 60,
                    "g_loss": sum(r["g_loss"] for r in group) / n,
                    "d_loss": sum(r["d_loss"] for r in group) / n,
                    "d_real": -sum(r["d_real"] for r in group) / n,
                    "d_fake": sum(r["d_fake"] for r in group) / n, "steps": n})
    return out


def _line(row: dict | None) -> str:
    if row is None:
        return "| | "
    return (f"| {row['g_loss']:.2f} / {row['d_loss']:.2f} | "
            f"{row['d_real']:.2f} / {row['d_fake']:.2f} ")


def table(ours: list[dict], info: dict) -> str:
    """Markdown: the run's epoch lines beside the book's, for every epoch the run has."""
    book = {r["epoch"]: r for r in book_epochs()}
    name = NAMES.get(info["dataset"], info["dataset"])
    lines = [
        "# The tutorial's run, reproduced", "",
        f"Ours: the `seed` preset on **{name}** ({info['n_images']:,} images, "
        f"{info['steps_per_epoch']} steps per epoch), device {info['device']}. "
        f"Book: MNIST, {STEPS_PER_EPOCH} steps per epoch, TensorFlow 2.1 on a Colab GPU.", "",
        "Same networks, losses, penalty, optimizer and kind of data order (checked against "
        "Keras by tests/test_keras_oracle.py); other random streams (weights, z, alphas, "
        "dropout masks, shuffle), so compare the course of the numbers, not their digits."
        + ("" if info["dataset"] == "mnist" else f" And {name} is not MNIST."), "",
        "| epoch | book G / D | book D-Real / D-Fake | ours G / D | ours D-Real / D-Fake "
        "| book min | ours min |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ours:
        mine, theirs = row, book.get(row["epoch"])
        minutes = f"{theirs['minutes']:.2f}" if theirs else ""
        lines.append(f"| {row['epoch']} {_line(theirs)}{_line(mine)}| {minutes} "
                     f"| {row['minutes']:.2f} |")
    lines += ["", "## The learning curve", "", BOOK_FIGURE, "",
              f"Ours: `{FIGURE}` (left: every iteration, as the book's figure; right: epoch "
              "means beside the book's log)."]
    return "\n".join(lines) + "\n"


def curve_figure(rows: list[dict], ours: list[dict], steps_per_epoch: int, path: Path) -> None:
    """Draws to path this run's loss per iteration, and its epoch means beside the book's."""
    book = book_epochs()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    steps = [r["step"] for r in rows]
    left.plot(steps, [r["g_loss"] for r in rows], label="Generator loss", alpha=0.95)
    left.plot(steps, [r["d_loss"] for r in rows], label="Critic loss", alpha=0.95)
    left.set_xlabel(f"Iteration ({steps_per_epoch} per epoch)")
    left.set_ylabel("Loss")
    left.set_title("This run, every iteration")
    left.legend()
    for source, style, label in ((book, "--", "book (MNIST)"), (ours, "-", "this run")):
        epochs = [r["epoch"] for r in source]
        right.plot(epochs, [r["g_loss"] for r in source], style, color="C0",
                   label=f"G, {label}")
        right.plot(epochs, [r["d_loss"] for r in source], style, color="C1",
                   label=f"D, {label}")
    right.set_xlabel("Epoch")
    right.set_title("Epoch means: this run and the book's log")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_comparison(run_dir: Path) -> list[Path]:
    """tutorial.md, tutorial.json and tutorial_curve.png from a finished run directory."""
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    info["dataset"] = cfg["run"]["dataset"]
    rows = read_metrics(run_dir)
    ours = epoch_means(rows)
    write_json(run_dir / DATA, {"dataset": info["dataset"], "ours": ours,
                                "book": book_epochs()})
    text = table(ours, info)
    atomic_write(run_dir / TABLE, lambda f: f.write(text.encode()))
    curve_figure(rows, ours, info["steps_per_epoch"], run_dir / FIGURE)
    return [run_dir / TABLE, run_dir / DATA, run_dir / FIGURE]


def reproduce(cfg: Config, resume: bool = False) -> list[Path]:
    """Train (training/loop.py's train), then write the comparison."""
    from ..training.loop import train

    result = train(cfg, resume)
    return write_comparison(result.run_dir)
