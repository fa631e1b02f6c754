"""The pictures of a run report, each rendered to bytes in memory (nothing written to the run).

The learning curve and samples-by-epoch figures are the ones `wganlab plot` draws; the rest
are the report's own: FID against wall time, critic health, and the fixed-z samples as a GIF.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw

from ..metrics.health import OVERFIT_LIMIT, Flag, number
from . import plots

plt = plots.plt  # matplotlib with the Agg backend, as plots.py set it up

GIF_FRAMES = 60  # at most; a long run's epochs are thinned evenly, the last always kept
GIF_MS, GIF_LAST_MS = 300, 1500  # per frame, and a pause on the last one


def _rendered(draw) -> bytes | None:
    """Call draw(file) on an in-memory file; None when it drew nothing."""
    buf = io.BytesIO()
    draw(buf)
    return buf.getvalue() or None


def _save(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def learning_curve_png(rows: list[dict], steps_per_epoch: int) -> bytes | None:
    """The learning curve as PNG bytes; None when no row has both losses."""
    rows = [r for r in rows if "g_loss" in r and "d_loss" in r]
    if not rows:
        return None
    return _rendered(lambda f: plots.learning_curve(rows, steps_per_epoch, f))


def samples_by_epoch_png(run_dir: Path, image_shape) -> bytes | None:
    """The samples-by-epoch figure as PNG bytes; None when the run saved no epoch grids."""
    return _rendered(lambda f: plots.samples_by_epoch(run_dir, tuple(image_shape), f))


def _finite(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["step"], number(r[key])) for r in rows if key in r and "step" in r]
    pairs = [(s, v) for s, v in pairs if math.isfinite(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def fid_curve_png(evals: list[dict]) -> bytes | None:
    """FID against wall time (minutes), or against steps when the rows carry no time."""
    rows = [r for r in evals if "fid" in r]
    if not rows:
        return None
    by_time = all("time" in r for r in rows)
    x = [number(r["time"]) / 60 if by_time else r.get("step", i) for i, r in enumerate(rows)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, [number(r["fid"]) for r in rows], "o-", label="FID")
    ax.set_xlabel("Training time (minutes)" if by_time else "Generator step")
    ax.set_ylabel("FID (lower is better)")
    ax.grid(alpha=0.3)
    return _save(fig)


def health_png(rows: list[dict], flags: list[Flag], w_bound: float) -> bytes | None:
    """One panel per health statistic the run logged, with flagged steps marked."""
    panels = [(key, label) for key, label in (
        ("wasserstein", "Wasserstein estimate E[D(real)] - E[D(fake)]"),
        ("gp_norm_mean", "Critic gradient norm at interpolates (mean)"),
        ("clip_share", "Share of critic weights at the clip bound"),
        ("diversity", "Batch diversity (generated / real pairwise distance)"),
        ("overfit", "Critic overfitting: held-out reals scored from training reals (0) "
                    "towards fakes (1)"),
        ("augment_p", "Augmentation probability p (--augment-p)"),
    ) if _finite(rows, key)[0]]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), squeeze=False,
                             sharex=True)
    for ax, (key, label) in zip(axes[:, 0], panels):
        steps, values = _finite(rows, key)
        ax.plot(steps, values, lw=1, marker="." if len(values) < 50 else None)
        ax.set_title(label, fontsize=10)
        if key == "wasserstein" and math.isfinite(w_bound) and max(map(abs, values)) > w_bound:
            ax.axhline(w_bound, color="red", ls="--", lw=1, label="1-Lipschitz limit")
            ax.legend(fontsize=8)
        if key == "gp_norm_mean":
            ax.axhspan(0.9, 1.1, color="green", alpha=0.15)
        if key == "overfit":
            ax.axhline(OVERFIT_LIMIT, color="red", ls="--", lw=1, label="health flag beyond")
            ax.legend(fontsize=8)
        for flag in flags:
            ax.axvline(flag.step, color="red", alpha=0.4, lw=1)
    axes[-1, 0].set_xlabel("Generator step")
    return _save(fig)


def epoch_pngs(run_dir: Path) -> list[tuple[int, Path]]:
    """samples/epoch-NNN.png files in epoch order."""
    folder = Path(run_dir) / "samples"
    found = [(int(m.group(1)), p) for p in folder.glob("epoch-*.png")
             if (m := plots.EPOCH_PNG.match(p.name))]
    return sorted(found)


def thin(items: list, most: int) -> list:
    """At most `most` items, evenly spread, first and last kept."""
    if len(items) <= most:
        return list(items)
    if most == 1:
        return [items[-1]]
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


def _captioned(path: Path, text: str) -> Image.Image:
    grid = Image.open(path)
    grid = grid.convert("RGB" if grid.mode not in ("L", "RGB") else grid.mode)
    strip = 14
    frame = Image.new(grid.mode, (grid.width, grid.height + strip), 0)
    frame.paste(grid, (0, strip))
    ImageDraw.Draw(frame).text((3, 1), text, fill=255 if grid.mode == "L" else (255, 255, 255))
    return frame


def samples_gif(run_dir: Path, most: int = GIF_FRAMES) -> bytes | None:
    """The fixed-z sample grids of every epoch as one looping animated GIF."""
    found = thin(epoch_pngs(run_dir), most)
    if not found:
        return None
    frames = [_captioned(path, f"epoch {epoch}") for epoch, path in found]
    buf = io.BytesIO()
    durations = [GIF_MS] * (len(frames) - 1) + [GIF_LAST_MS]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    return buf.getvalue()
