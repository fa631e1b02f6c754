"""Compare evaluated runs: one table (text, Markdown, CSV) and FID against wall time and steps."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .evaluate import COLUMNS, _fmt  # noqa: E402

PROVENANCE = ("n_real", "n_fake", "reference", "evaluator_sha256")


def read_run(run: str | Path) -> tuple[dict, list[dict]]:
    """A run's eval.json (final evaluation) and its in-training eval rows from metrics.jsonl."""
    run = Path(run)
    path = run / "eval.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no evaluation; run `wganlab evaluate {run}` first")
    final = json.loads(path.read_text())
    final["run"] = str(run)
    curve = []
    metrics = run / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("fid") is not None:
                curve.append(row)
    if final.get("train_seconds") is not None and final.get("step") not in {
            r["step"] for r in curve}:
        curve.append({"time": final["train_seconds"], "step": final["step"], "fid": final["fid"]})
    return final, sorted(curve, key=lambda r: r["step"])


def provenance_warnings(records: list[dict]) -> list[str]:
    """Numbers measured differently are not comparable: say which field differs."""
    warnings = []
    for key in PROVENANCE:
        values = {str(r.get(key)) for r in records}
        if len(values) > 1:
            warnings.append(f"warning: runs differ in {key} ({', '.join(sorted(values))}); "
                            "their metrics are not directly comparable")
    return warnings


def markdown(records: list[dict]) -> str:
    """A Markdown table, one row per evaluated run."""
    head = ["run", "preset", "step", "train s"] + [h for _, h in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [r["run"], str(r.get("preset")), _fmt(r.get("step")),
                 _fmt(r.get("train_seconds"))] + [_fmt(r.get(k)) for k, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(records: list[dict]) -> str:
    """The same records as CSV, with their provenance columns."""
    keys = ["run", "preset", "step", "train_seconds", *[k for k, _ in COLUMNS], *PROVENANCE]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    return buf.getvalue()


def fid_plot(curves: dict[str, list[dict]], path: Path) -> None:
    """FID against wall time and against generator steps, one line per run."""
    fig, (by_time, by_step) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in curves.items():
        if not rows:
            continue
        by_time.plot([r["time"] / 60 for r in rows], [r["fid"] for r in rows], "o-", label=name)
        by_step.plot([r["step"] for r in rows], [r["fid"] for r in rows], "o-", label=name)
    for ax, label in ((by_time, "wall time (min)"), (by_step, "generator step")):
        ax.set_xlabel(label)
        ax.set_ylabel("FID (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(runs: list[str], out_dir: str | Path) -> tuple[str, list[str]]:
    """Write compare.md, compare.csv, compare_fid.png into out_dir; return the table and
    any provenance warnings."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, curves = [], {}
    for run in runs:
        final, curve = read_run(run)
        records.append(final)
        curves[Path(run).name] = curve
    warnings = provenance_warnings(records)
    md = markdown(records)
    (out_dir / "compare.md").write_text(md + "".join(f"\n{w}\n" for w in warnings))
    (out_dir / "compare.csv").write_text(to_csv(records))
    fid_plot(curves, out_dir / "compare_fid.png")
    return md, warnings
