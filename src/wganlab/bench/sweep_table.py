"""A sweep's comparison: mean +- std over seeds per preset, as a Markdown table and a plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

# (record key, column title, format) of every compared number.
COLUMNS = (("steps", "steps", "{:.0f}"), ("minutes", "minutes", "{:.2f}"),
           ("fid", "FID", "{:.2f}"), ("kid_mean", "KID", "{:.4f}"),
           ("modes_covered", "classes covered", "{:.1f}"),
           ("class_accuracy", "class accuracy", "{:.3f}"),
           ("class_accuracy_min", "worst class", "{:.3f}"))
CONDITIONS = ("equal_time", "equal_steps")


def mean_std(values: list) -> dict:
    """{"mean", "std", "n"} of the finite values; std is the sample std (None for n < 2)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return {"mean": statistics.fmean(xs) if xs else None,
            "std": statistics.stdev(xs) if len(xs) >= 2 else None, "n": len(xs)}


def summarise(equal_time: list[dict], equal_steps: list[dict], presets: list[str]) -> dict:
    """{condition: {preset: {key: mean_std}}} over the runs (one per seed) of each preset."""
    summary = {}
    for condition, records in zip(CONDITIONS, (equal_time, equal_steps)):
        if not records:
            continue
        summary[condition] = {
            preset: {key: mean_std([r.get(key) for r in records if r["preset"] == preset])
                     for key, _, _ in COLUMNS}
            for preset in presets}
    return summary


def cell(stats: dict, fmt: str) -> str:
    """The cell text: mean ± std over seeds (the mean alone for one seed, n/a for none)."""
    if stats["mean"] is None:
        return "n/a"
    text = fmt.format(stats["mean"])
    return text if stats["std"] is None else f"{text} ± {fmt.format(stats['std'])}"


def format_table(summary: dict, minutes: float, steps: int | None) -> str:
    """Markdown: one row per (preset, condition), mean ± std over seeds in every cell."""
    titles = {"equal_time": f"equal time ({minutes:g} min)",
              "equal_steps": f"equal steps ({steps})"}
    head = ["preset", "condition", "seeds"] + [title for _, title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    presets = next(iter(summary.values()), {})
    for preset in presets:
        for condition in CONDITIONS:
            if condition not in summary:
                continue
            stats = summary[condition][preset]
            cells = [preset, titles[condition], str(stats["steps"]["n"])]
            cells += [cell(stats[key], fmt) for key, _, fmt in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean ± sample standard deviation over seeds. FID and KID: lower is better; "
                 "classes covered and class accuracy (conditional runs: the share of images "
                 "the evaluator calls the class they were asked for): higher is better.")
    return "\n".join(lines)


def plot_sweep(summary: dict, path: Path, minutes: float, steps: int | None) -> None:
    """FID, KID and classes covered per preset: one bar per condition, seeds' std as error."""
    from ..reporting.plots import plt

    metrics = [(key, title) for key, title, _ in COLUMNS if key in ("fid", "kid_mean",
                                                                    "modes_covered")]
    conditions = [c for c in CONDITIONS if c in summary]
    labels = {"equal_time": f"equal time ({minutes:g} min)",
              "equal_steps": f"equal steps ({steps})"}
    presets = list(next(iter(summary.values()), {}))
    width = 0.8 / max(1, len(conditions))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4), squeeze=False)
    for ax, (key, title) in zip(axes[0], metrics):
        for i, condition in enumerate(conditions):
            stats = [summary[condition][p][key] for p in presets]
            xs = [j + (i - (len(conditions) - 1) / 2) * width for j in range(len(presets))]
            means = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
            errors = [s["std"] or 0.0 for s in stats]
            ax.bar(xs, means, width, yerr=errors, capsize=4, label=labels[condition])
        ax.set_xticks(range(len(presets)))
        ax.set_xticklabels(presets)
        ax.set_title(f"{title} ({'higher' if key == 'modes_covered' else 'lower'} is better)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
