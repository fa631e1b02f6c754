"""`wganlab report RUN`: the whole story of a run in one self-contained report.html.

No server and no files beside it: every picture is embedded as base64. Sections: summary and
config, learning curve, FID against time, samples by epoch and an animated GIF of the fixed-z
samples, critic health (flags and curves), and the evaluation table from eval.json.
"""

from __future__ import annotations

import base64
import html
import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path

from ..base.files import atomic_write
from ..errors import ConfigError, DataError
from ..metrics.health import (
    Flag,
    is_eval_row,
    lipschitz_bound,
    logged_flags,
    number,
    read_rows,
    scan,
)
from ..runfiles import RunFileWarning, best_evaluation, read_config, read_eval, read_run_info

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } img.grid { width: 30em; image-rendering: pixelated; }
.muted { color: #777; }
.flag { color: #a00; font-weight: bold; } details { margin: 0.5em 0; }
"""


def _esc(value) -> str:
    return html.escape(str(value))


def _img(data: bytes | None, alt: str, mime: str = "image/png", cls: str = "") -> str:
    if data is None:
        return f'<p class="muted">No {_esc(alt.lower())} yet.</p>'
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="{cls}" src="data:{mime};base64,{encoded}" alt="{_esc(alt)}">'


def _cell(value) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
        return f'<td class="num">{_esc(text)}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if isinstance(value, (dict, list)):
        return f"<td><code>{_esc(json.dumps(value))}</code></td>"
    return f"<td>{_esc('' if value is None else value)}</td>"


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """An HTML table of dict rows; columns default to every key, in order of appearance."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def eval_table(result) -> str:
    """eval.json as a table, whatever its shape: {metric: value}, {name: {metric: value}},
    or a list of records."""
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return table(result)
    if isinstance(result, dict) and isinstance(result.get("members"), list):
        # An ensemble's evaluation: a row per member, then the mean and the spread.
        columns = [k for k in result if isinstance(result.get(f"{k}_std"), (int, float))]
        rows = [{"": f"member {m.get('member')}", **{c: m.get(c) for c in columns}}
                for m in result["members"]]
        rows += [{"": "mean", **{c: result[c] for c in columns}},
                 {"": "std", **{c: result[f"{c}_std"] for c in columns}}]
        return table(rows, ["", *columns])
    if isinstance(result, dict):
        if result and all(isinstance(v, dict) for v in result.values()):
            return table([{"": k, **v} for k, v in result.items()])
        return table([{"metric": k, "value": v} for k, v in result.items()])
    return f"<pre>{_esc(json.dumps(result, indent=2))}</pre>"


def per_class_table(evaluation) -> str:
    """A conditional run's per-class numbers from eval.json, one row per class ("" when the
    evaluation has none)."""
    if not isinstance(evaluation, dict) or not evaluation.get("class_names"):
        return ""
    accuracy = evaluation.get("class_accuracy_per_class") or {}
    fids = evaluation.get("fid_per_class") or {}
    rows = [{"class": name, "class accuracy": accuracy.get(name), "FID": fids.get(name)}
            for name in evaluation["class_names"]]
    return ("<h3>Per class</h3><p>Class accuracy: the share of images asked for as the class "
            "that the evaluator classifies as it. FID: the class's samples against the "
            "class's reference images, on the evaluator's features.</p>" + table(rows))


def config_table(cfg: dict) -> str:
    """The config as an HTML table, one row per section and field."""
    rows = [{"section": section, "field": name, "value": value}
            for section, values in cfg.items() if isinstance(values, dict)
            for name, value in values.items()]
    return table(rows)


def flags_section(flags: list[Flag], found_later: set[str]) -> str:
    """The health flags as HTML, marking those found only when the report was written."""
    if not flags:
        return '<p>No health flags were raised.</p>'
    rows = []
    for f in flags:
        note = " <em>(found when the report was written)</em>" if f.name in found_later else ""
        rows.append(f'<tr><td class="flag">{_esc(f.name)}</td><td class="num">{f.step}</td>'
                    f"<td>{_esc(f.hint)}{note}</td></tr>")
    head = "<tr><th>flag</th><th>step</th><th>what it means</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _optional(reader, path: Path, missing):
    """A run file the report can do without: (its contents or `missing`, a note when it is
    unreadable). Training writes the report at its end; a damaged extra file must not fail
    the run, so it is named in the report and in one warning instead."""
    if not path.exists():
        return missing, None
    try:
        return reader(path), None
    except DataError as e:
        warnings.warn(str(e), RunFileWarning, stacklevel=3)
        return missing, f'<p class="flag">{_esc(e)}</p>'


def _summary(cfg: dict, info: dict, train_rows: list[dict]) -> dict:
    last = train_rows[-1] if train_rows else {}
    summary = {"preset": cfg.get("preset"), "dataset": cfg.get("run", {}).get("dataset"),
               "loss": cfg.get("train", {}).get("loss"), "steps done": last.get("step"),
               "epochs done": last.get("epoch"), "device": info.get("device")}
    if "time" in last:
        summary["training time (min)"] = round(number(last["time"]) / 60, 2)
    for key in ("g_loss", "d_loss", "wasserstein"):
        if key in last:
            summary[f"last {key}"] = number(last[key])
    return summary


def build_report(run_dir: str | Path, drawn: Iterable[str | Path] = ()) -> str:
    """The report of a run directory as one HTML string.

    drawn: figure files (learning_curve.png, samples_by_epoch.png) that `plots.redraw` has
    just drawn from this run, embedded as they are instead of drawn a second time (the end
    of training draws both, then writes the report).
    """
    from . import figures as figs  # matplotlib: loaded when a report is written
    from .members import members_section

    run_dir = Path(run_dir)
    fresh = {Path(p).name: Path(p) for p in drawn}

    def figure(name: str, draw) -> bytes | None:
        return fresh[name].read_bytes() if name in fresh else draw()

    try:
        config = read_config(run_dir / "config.json")
    except ConfigError as e:
        raise ConfigError(f"RUN: {run_dir} is not a run directory ({e})") from None
    cfg = config.to_dict()
    info, info_note = _optional(read_run_info, run_dir / "run.json", {})
    rows = read_rows(run_dir / "metrics.jsonl")
    train_rows = [r for r in rows if "g_loss" in r]
    evals = [r for r in rows if is_eval_row(r)]
    shape = cfg.get("model", {}).get("image_shape") or (1, 28, 28)
    w_bound = lipschitz_bound(shape)

    # Flags logged during training, plus any the rules find now that were not (older runs).
    flags = logged_flags(rows)
    logged = {f.name for f in flags}
    later = [f for f in scan(rows, w_bound) if f.name not in logged]
    flags += later

    evaluation, eval_note = _optional(read_eval, run_dir / "eval.json", None)
    eval_html = eval_note or (eval_table(evaluation) if evaluation is not None else
                              '<p class="muted">No eval.json in this run.</p>')
    spe = int(info.get("steps_per_epoch", 0) or 0)
    title = f"wganlab run report: {run_dir.name}"
    sections = [
        f"<h1>{_esc(title)}</h1><p class=\"muted\">{_esc(run_dir.resolve())}</p>",
        "<section id=\"summary\"><h2>Summary</h2>"
        + table([{"": k, "value": v} for k, v in _summary(cfg, info, train_rows).items()])
        + (info_note or "") + "<details><summary>Full configuration</summary>"
        + config_table(cfg)
        + "</details></section>",
        "<section id=\"learning-curve\"><h2>Learning curve</h2>"
        + _img(figure("learning_curve.png", lambda: figs.learning_curve_png(train_rows, spe)),
               "Learning curve") + "</section>",
        "<section id=\"fid\"><h2>FID against time</h2>"
        + _img(figs.fid_curve_png(evals), "FID curve") + _best_note(run_dir, rows)
        + "</section>",
        "<section id=\"samples\"><h2>Samples</h2><h3>By epoch (fixed z)</h3>"
        + _img(figure("samples_by_epoch.png", lambda: figs.samples_by_epoch_png(run_dir, shape)),
               "Samples by epoch")
        + "<h3>Across epochs (animated)</h3>"
        + _img(figs.samples_gif(run_dir), "Samples animation", "image/gif", "grid") + "</section>",
        "<section id=\"flags\"><h2>Critic health</h2>"
        + flags_section(flags, {f.name for f in later})
        + _img(figs.health_png(train_rows, flags, w_bound), "Health curves") + "</section>",
        "<section id=\"evaluation\"><h2>Evaluation</h2>" + eval_html
        + per_class_table(evaluation) + "</section>",
        members_section(run_dir, cfg, train_rows),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def _best_note(run_dir: Path, rows: list[dict]) -> str:
    """Where the lowest FID of --eval-every was, and how to sample its checkpoint."""
    best = best_evaluation(rows)
    if best is None:
        return ""
    command = _esc(f"wganlab generate {run_dir} --checkpoint best")
    return (f"<p>Lowest FID {best['fid']:.1f} at step {best['step']:,}: <code>{command}</code> "
            "samples its checkpoint (chosen on the split it was measured on, so that FID "
            "flatters it).</p>")


def write_report(run_dir: str | Path, out: str | Path | None = None,
                 drawn: Iterable[str | Path] = ()) -> Path:
    """Write the report (default RUN/report.html) atomically; returns its path. drawn: as
    in build_report."""
    page = build_report(run_dir, drawn).encode("utf-8")
    # --out is a path the user named: a link there is written through to its target.
    return atomic_write(Path(out) if out else Path(run_dir) / "report.html",
                        lambda f: f.write(page), follow_link=out is not None)
