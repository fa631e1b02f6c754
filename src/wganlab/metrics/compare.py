"""Compare evaluated runs: one table (text, Markdown, CSV) and FID against wall time and steps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..base.files import atomic_write, refuse_system_folder  # noqa: E402
from ..runfiles import read_eval, read_metrics  # noqa: E402
from .evaluate import COLUMNS, _fmt  # noqa: E402
from .health import number  # noqa: E402

PROVENANCE = ("n_real", "n_fake", "reference", "evaluator_sha256")


def read_run(run: str | Path) -> tuple[dict, list[dict]]:
    """A run's eval.json (final evaluation) and its in-training eval rows from metrics.jsonl,
    each read against its schema (errors name the file and key)."""
    run = Path(run)
    path = run / "eval.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no evaluation; run `wganlab evaluate {run}` first")
    final = dict(read_eval(path))
    final["run"] = str(run)
    curve = [row for row in read_metrics(run / "metrics.jsonl")
             if row.get("fid") is not None and "time" in row]
    if final.get("train_seconds") is not None and final.get("step") not in {
            r["step"] for r in curve}:
        curve.append({"time": final["train_seconds"], "step": final.get("step") or 0,
                      "fid": final["fid"]})
    return final, sorted(curve, key=lambda r: r["step"])


def labels(runs: list[str | Path]) -> list[str]:
    """A distinct short name per run: its folder name, with as many parent folders as it
    takes to tell runs apart (exp1/fast and exp2/fast, not fast twice)."""
    parts = [Path(r).resolve().parts for r in runs]
    for depth in range(1, max(map(len, parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{name} ({i + 1})" for i, name in enumerate(names)]  # one run named twice


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
        fid = [number(r["fid"]) for r in rows]
        by_time.plot([number(r["time"]) / 60 for r in rows], fid, "o-", label=name)
        by_step.plot([r["step"] for r in rows], fid, "o-", label=name)
    for ax, label in ((by_time, "wall time (min)"), (by_step, "generator step")):
        ax.set_xlabel(label)
        ax.set_ylabel("FID (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def compare(runs: list[str], out_dir: str | Path) -> tuple[str, list[str]]:
    """Write compare.md, compare.csv, compare_fid.png into out_dir; return the table and
    any provenance warnings."""
    out_dir = Path(out_dir).expanduser()
    refuse_system_folder(out_dir, "--out")
    records, curves = [], {}
    for run, label in zip(runs, labels(runs)):
        final, curve = read_run(run)
        records.append(final)
        curves[label] = curve
    warnings = provenance_warnings(records)
    md = markdown(records)
    text = md + "".join(f"\n{w}\n" for w in warnings)
    atomic_write(out_dir / "compare.md", lambda f: f.write(text.encode()))
    atomic_write(out_dir / "compare.csv", lambda f: f.write(to_csv(records).encode()))
    fid_plot(curves, out_dir / "compare_fid.png")
    return md, warnings
