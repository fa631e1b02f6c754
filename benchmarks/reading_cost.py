"""What a reading of the overfitting heuristic costs, from runs that were made anyway.

A run of `--augment-p auto` reads the heuristic after every --augment-interval-th step, before
that step's time is logged, and `metrics.jsonl` has each step's training seconds. So inside
one run, on the same core at the same moment, the steps that read and those that do not are
two samples of the same step with and without the reading: the difference of their medians
is its cost, free of the run-to-run spread (4% and more here) that timing separate runs has.
Steps that log (every --log-every), end an epoch or save a checkpoint do more work and are
left out, as are the first 50 (start-up).

    python benchmarks/reading_cost.py runs/full60k/auto06/seed-*   # auto runs
    python benchmarks/reading_cost.py runs/full60k/plain/seed-1     # other steps only
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SKIP_FIRST = 50  # start-up steps


def step_seconds(run: Path) -> tuple[list[float], list[float]]:
    """(seconds of the steps that read the heuristic, of the plain steps) for one run."""
    cfg = json.loads((run / "config.json").read_text())
    t, r = cfg["train"], cfg["run"]
    auto = t.get("augment_p") == "auto" and t.get("augment", "none") != "none"
    every = t.get("augment_interval", 4) if auto else None  # 4 before the flag existed
    per_epoch = json.loads((run / "run.json").read_text())["steps_per_epoch"]
    saves = [k for k in (r.get("keep_every"), r.get("checkpoint_every")) if k]
    times = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if "time" in row and "step" in row:
            times[row["step"]] = row["time"]
    reading, plain = [], []
    for step, seconds in sorted(times.items()):
        busy = any(step % k == 0 for k in (r["log_every"], per_epoch, *saves))
        if step <= SKIP_FIRST or busy or step - 1 not in times:
            continue
        (reading if every and step % every == 0 else plain).append(seconds - times[step - 1])
    return reading, plain


def summary(run: Path) -> dict:
    """Median seconds of both kinds of step, and the reading's cost in seconds and as a
    share of a plain step."""
    reading, plain = step_seconds(run)
    out = {"run": str(run), "plain_steps": len(plain),
           "plain_median": statistics.median(plain), "reading_steps": len(reading)}
    if reading:
        cost = statistics.median(reading) - out["plain_median"]
        out.update(reading_median=statistics.median(reading), cost=cost,
                   share=cost / out["plain_median"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    for run in ap.parse_args().runs:
        s = summary(run)
        line = f"{s['run']}: other steps {s['plain_median']:.4f} s (n={s['plain_steps']})"
        if "cost" in s:
            line += (f", reading steps {s['reading_median']:.4f} s (n={s['reading_steps']}): "
                     f"a reading costs {s['cost']:.4f} s, {s['share']:.1%} of a step")
        print(line)


if __name__ == "__main__":
    main()
