"""Figures of a run: image grids, the learning curve, samples by epoch (matplotlib, Agg)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..base.files import atomic_write  # noqa: E402
from ..base.images import tiles  # noqa: E402
from ..base.textfile import read_json  # noqa: E402
from ..errors import ConfigError  # noqa: E402
from ..runfiles import read_config, read_run_info  # noqa: E402
from ..runfiles import read_metrics as read_rows  # noqa: E402

EPOCH_PNG = re.compile(r"^epoch-(\d{3,})\.png$")


def read_metrics(run_dir: Path) -> list[dict]:
    """The training rows (those with both losses) of run_dir/metrics.jsonl; [] when it is missing.
    Lines that are not rows are skipped with one warning (runfiles.read_metrics)."""
    return [r for r in read_rows(Path(run_dir) / "metrics.jsonl")
            if "g_loss" in r and "d_loss" in r]


def save_figure(fig, path) -> None:
    """Write a figure as PNG to a file object, or to a path through the one writer (atomic;
    never over a user's device or link), then close it."""
    buf = path if hasattr(path, "write") else io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    if buf is not path:
        atomic_write(path, lambda f: f.write(buf.getvalue()))


def learning_curve(rows: list[dict], steps_per_epoch: int, path: Path) -> None:
    """The tutorial's figure: generator and critic loss per iteration, epochs on a 2nd axis."""
    fig, ax = plt.subplots(figsize=(8, 6))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["g_loss"] for r in rows], label="Generator loss", alpha=0.95)
    ax.plot(steps, [r["d_loss"] for r in rows], label="Critic loss", alpha=0.95)
    ax.legend(fontsize=14)
    ax.set_xlabel("Iteration (generator step)", size=13)
    ax.set_ylabel("Loss", size=13)
    if steps and steps_per_epoch > 0:
        last_epoch = max(1, int(np.ceil(steps[-1] / steps_per_epoch)))
        ticks = sorted({int(e) for e in np.linspace(1, last_epoch, min(6, last_epoch))})
        ax2 = ax.twiny()
        ax2.set_xlim(ax.get_xlim())
        ax2.set_xticks([e * steps_per_epoch for e in ticks])
        ax2.set_xticklabels(ticks)
        ax2.xaxis.set_ticks_position("bottom")
        ax2.xaxis.set_label_position("bottom")
        ax2.spines["bottom"].set_position(("outward", 45))
        ax2.set_xlabel("Epoch", size=13)
    fig.tight_layout()
    save_figure(fig, path)


def pick_epochs(available: list[int], wanted=(1, 2, 4, 10, 50, 100)) -> list[int]:
    """The tutorial's epochs where they exist, else a spread over those that do (last included)."""
    chosen = [e for e in wanted if e in available]
    if len(chosen) < min(6, len(available)):
        spread = np.linspace(0, len(available) - 1, min(6, len(available))).round().astype(int)
        chosen = sorted(set(chosen) | {available[i] for i in spread})[-6:]
    return chosen


def grey_limits(image: np.ndarray, scaling: str) -> tuple[float, float]:
    """The values drawn as white and black: 0-255 for every image ("fixed"), or the image's
    own range ("per-image": what the tutorial's imshow(floats, cmap='gray_r') does)."""
    if scaling == "fixed":
        return 0.0, 255.0
    low, high = float(image.min()), float(image.max())
    return (low, high) if high > low else (low, low + 1.0)


def _sample_scaling(run_dir: Path) -> str:
    """The run's own choice; runs written before the option existed used the fixed scale."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return "fixed"
    data = read_json(path, ConfigError)  # only this key is needed: read what is there
    run = data.get("run") if isinstance(data, dict) else None
    scaling = run.get("sample_scaling", "fixed") if isinstance(run, dict) else "fixed"
    return scaling if scaling in ("fixed", "per-image") else "fixed"


def samples_by_epoch(run_dir: Path, image_shape: tuple[int, int, int], path: Path,
                     scaling: str | None = None) -> None:
    """Rows of 5 fixed-z samples at selected epochs, as in the tutorial.

    scaling: "fixed" or "per-image" (see grey_limits); default: the run config's choice.
    """
    scaling = scaling or _sample_scaling(run_dir)
    folder = Path(run_dir) / "samples"
    found = {int(m.group(1)): folder / p.name
             for p in sorted(folder.glob("epoch-*.png")) if (m := EPOCH_PNG.match(p.name))}
    epochs = pick_epochs(sorted(found))
    if not epochs:
        return
    fig, axes = plt.subplots(len(epochs), 5, figsize=(8, 1.7 * len(epochs)), squeeze=False)
    gray = image_shape[0] == 1
    for row, epoch in zip(axes, epochs):
        images = tiles(found[epoch], image_shape[1:], 5)
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(images):
                low, high = grey_limits(images[j], scaling) if gray else (0, 255)
                ax.imshow(images[j], cmap="gray_r" if gray else None, vmin=low, vmax=high)
        row[0].set_ylabel(f"Epoch {epoch}", rotation=90, size=12, color="red")
    fig.tight_layout()
    save_figure(fig, path)


def redraw(run_dir: str | Path) -> list[Path]:
    """Redraw learning_curve.png and samples_by_epoch.png from a run directory."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir / "config.json")
    info = read_run_info(run_dir / "run.json")
    written = []
    rows = read_metrics(run_dir)
    if rows:
        learning_curve(rows, info.get("steps_per_epoch", 0), run_dir / "learning_curve.png")
        written.append(run_dir / "learning_curve.png")
    if cfg.model.image_shape is None:  # a config that never trained: no samples to draw
        return written
    samples_by_epoch(run_dir, tuple(cfg.model.image_shape), run_dir / "samples_by_epoch.png",
                     cfg.run.sample_scaling)
    if (run_dir / "samples_by_epoch.png").exists():
        written.append(run_dir / "samples_by_epoch.png")
    return written
