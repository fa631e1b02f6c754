"""Equal-time runs, two at a time: each job trains with `wganlab train --minutes M` pinned to
one core with one thread, then is evaluated there (`wganlab evaluate --n N`); a second
worker does the same on the other core. Every run of a comparison so gets the same share of
the machine (one core), which a queue of two-thread runs on a machine that also serves other
work does not; and the table costs about half the wall time. One core is less than the
demo's two (one thread ran `fast` at 0.18 s a step, two threads at 0.115 s), so a target met
here is met with room to spare.

    python benchmarks/side_by_side.py --out runs/conditional --minutes 8 \\
        --job "none=" --job "projection=--conditional projection" \\
        --job "acgan=--conditional acgan" --seeds 1,2,3 -- --preset fast
    python benchmarks/side_by_side.py --out runs/conditional --table   # the table only

With `--steps S --every K` instead of `--minutes`, each run trains S steps and each of its
checkpoints at a multiple of K is evaluated too (rows "NAME @ STEP"): equal steps, a quality
curve that the load on the machine cannot change, with each run's seconds per step recorded
(`seconds_per_step`) for turning steps into time.

Jobs are NAME=FLAGS; the flags after `--` go to every run. Runs land in OUT/NAME/seed-S; a run
with an eval.json is reused, one without (an interrupted comparison) resumed exactly from its
newest checkpoint by running the same command again. Appends OUT/records.jsonl (one line per
run: name, seed, steps, seconds, the load average at its start, and its eval.json) as runs
finish, and writes OUT/table.md: mean ± std over seeds per job, and each seed's steps and FID;
with `--paired-with NAME`, each run's FID change against NAME's run of the same seed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

from wganlab.base.checkpoint import checkpoint_path

WGANLAB = [sys.executable, "-m", "wganlab"]
COLUMNS = {"fid": "FID", "precision": "precision", "recall": "recall",
           "modes_covered": "classes covered", "class_accuracy": "class accuracy",
           "class_accuracy_min": "worst class"}


def one_run(job: tuple[str, list[str], int], out: Path, budget: list[str], common: list[str],
            eval_n: int, cores: Queue, every: int | None = None) -> list[dict]:
    """Train and evaluate one job on a core taken from `cores` (given back after); budget:
    ["--minutes", M] or ["--steps", S]. With `every`, each checkpoint at a multiple of it is
    evaluated (into OUT/evals/) and named "NAME @ STEP"; else the finished run."""
    name, flags, seed = job
    run = out / name / f"seed-{seed}"
    core = cores.get()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pin = ["taskset", "-c", str(core)]
    try:
        load, started, trained = os.getloadavg(), time.time(), None
        if not (run / "eval.json").exists():
            subprocess.run(pin + WGANLAB + train_args(run, flags, seed, budget, common, every),
                           env=env, check=True, stdout=subprocess.DEVNULL)
            trained = time.time() - started
            subprocess.run(pin + WGANLAB + ["evaluate", str(run), "--n", str(eval_n)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        found = [(name, json.loads((run / "eval.json").read_text()))]
        for step in range(every, found[0][1]["step"] + 1, every) if every else ():
            where = out / "evals" / f"{name}-seed{seed}-step{step}.json"
            if not where.exists():
                where.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(pin + WGANLAB + [
                    "evaluate", str(run), "--n", str(eval_n), "--out", str(where),
                    "--checkpoint", str(checkpoint_path(run, step))],
                    env=env, check=True, stdout=subprocess.DEVNULL)
            found.append((f"{name} @ {step:,}", json.loads(where.read_text())))
    finally:
        cores.put(core)
    # The evaluation's own "seed" (of its z) must not hide the run's.
    return [{**{k: v for k, v in e.items() if k != "config"}, "name": label, "seed": seed,
             "core": core, "steps": e["step"], "wall_seconds": trained,
             "seconds_per_step": _seconds_per_step(run), "load_at_start": list(load)}
            for label, e in found]


def train_args(run: Path, flags: list[str], seed: int, budget: list[str], common: list[str],
               every: int | None) -> list[str]:
    """`wganlab train`'s arguments for one job. A run folder left by an interrupted
    comparison is resumed (exactly, from its newest checkpoint), never started again."""
    saves = ["--keep-every", str(every)] if every else []
    again = ["--resume"] if (run / "config.json").exists() else []
    return ["train", *common, *flags, "--seed", str(seed), *budget, *saves, "--out", str(run),
            "--no-progress", *again]


def _seconds_per_step(run: Path) -> float | None:
    """Training seconds per step over the run, from its last logged row."""
    lines = (run / "metrics.jsonl").read_text().splitlines() if (
        run / "metrics.jsonl").exists() else []
    rows = [json.loads(line) for line in lines if line.strip()]
    rows = [r for r in rows if r.get("time") and r.get("step")]
    return rows[-1]["time"] / rows[-1]["step"] if rows else None


def run_jobs(jobs: list[tuple[str, list[str], int]], out: Path, minutes: float | None,
             common: list[str], eval_n: int = 10_000, cores: tuple[int, ...] = (0, 1),
             steps: int | None = None, every: int | None = None) -> None:
    """Run the jobs, one per core at a time, appending each record to OUT/records.jsonl:
    each for `minutes` of wall time, or for `steps` with each checkpoint at a multiple of
    `every` evaluated too (equal steps: the load on the machine cannot change the result)."""
    budget = ["--steps", str(steps)] if steps else ["--minutes", str(minutes)]
    free: Queue = Queue()
    for core in cores:
        free.put(core)
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(len(cores)) as pool, open(out / "records.jsonl", "a") as log:
        for records in pool.map(lambda j: one_run(j, out, budget, common, eval_n, free, every),
                                jobs):
            for record in records:
                log.write(json.dumps(record) + "\n")
                print(f"{record['name']} seed {record['seed']}: {record['steps']} steps, "
                      f"FID {record['fid']:.1f}", flush=True)
            log.flush()


def read_records(out: Path) -> list[dict]:
    """OUT/records.jsonl, the last record of each (name, seed), in the order first seen."""
    found: dict = {}
    for line in (out / "records.jsonl").read_text().splitlines():
        record = json.loads(line)
        found[(record["name"], record["seed"])] = record
    return list(found.values())


def summarise(records: list[dict]) -> dict[str, dict]:
    """{name: {key: [mean, std] over seeds, "seeds": [...], "steps_each": [...],
    "fids": [...]}} for the keys of COLUMNS and "steps" that the records have."""
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["name"], []).append(r)
    out = {}
    for name, rs in by.items():
        row: dict = {"seeds": [r["seed"] for r in rs], "steps_each": [r["steps"] for r in rs],
                     "fids": [r["fid"] for r in rs]}
        for key in ("steps", *COLUMNS):
            values = [r[key] for r in rs if r.get(key) is not None]
            if len(values) == len(rs):
                row[key] = [statistics.fmean(values),
                            statistics.stdev(values) if len(values) > 1 else 0.0]
        out[name] = row
    return out


def table(summary: dict[str, dict]) -> str:
    """Markdown: one row per job, mean ± std over seeds, then each seed's steps and FID."""
    keys = [k for k in COLUMNS if any(k in row for row in summary.values())]
    lines = ["| run | seeds | steps | " + " | ".join(COLUMNS[k] for k in keys)
             + " | steps per seed | FID per seed |",
             "|---" * (len(keys) + 5) + "|"]
    for name, row in summary.items():
        cells = [name, str(len(row["seeds"])), "{:.0f} ± {:.0f}".format(*row["steps"])]
        for k in keys:
            digits = 1 if k in ("fid", "modes_covered") else 3 if "class_acc" in k else 2
            cells.append("{:.{d}f} ± {:.{d}f}".format(*row[k], d=digits) if k in row else "-")
        cells += [", ".join(f"{n:,}" for n in row["steps_each"]),
                  ", ".join(f"{f:.0f}" for f in row["fids"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(records: list[dict], base: str) -> dict[str, list[tuple[int, float]]]:
    """{name: [(seed, FID change against base), ...]} for every other run: its FID over the
    FID of base's run of the same seed at the same step ("J @ S" against "BASE @ S"), less 1.
    What two runs of one seed share (data order, z where the flags leave it) drops out."""
    fid = {(r["name"], r["seed"]): r["fid"] for r in records}
    out: dict[str, list[tuple[int, float]]] = {}
    for (name, seed), value in fid.items():
        job, at, step = name.partition(" @ ")
        other = fid.get((base + at + step, seed))
        if job != base and other:
            out.setdefault(name, []).append((seed, value / other - 1))
    return out


def paired_table(pairs: dict[str, list[tuple[int, float]]], base: str) -> str:
    """Markdown: per run, each seed's FID change against base, their mean ± std, and in how
    many seeds it was lower."""
    lines = [f"| run | seeds | FID against {base}, per seed | mean ± std | lower in |",
             "|---|---|---|---|---|"]
    for name, rows in pairs.items():
        changes = [c for _, c in rows]
        spread = statistics.stdev(changes) if len(changes) > 1 else 0.0
        lines.append(f"| {name} | {', '.join(str(s) for s, _ in rows)} | "
                     + ", ".join(f"{c:+.0%}" for c in changes)
                     + f" | {statistics.fmean(changes):+.1%} ± {spread:.1%} | "
                     f"{sum(c < 0 for c in changes)} of {len(changes)} |")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    """The flags; those after `--` go to every run."""
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--steps", type=int, help="equal steps instead of equal minutes")
    ap.add_argument("--every", type=int, help="with --steps: evaluate every K steps too")
    ap.add_argument("--job", action="append", default=[], help="NAME=FLAGS")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--eval-n", type=int, default=10_000)
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--table", action="store_true", help="only write the table")
    ap.add_argument("--paired-with", metavar="NAME",
                    help="also tabulate each run's FID change against NAME's run of its seed")
    args = ap.parse_args(argv)
    if not args.table and ((args.minutes is None) == (args.steps is None) or not args.job):
        ap.error("give --minutes or --steps, and at least one --job (or --table)")
    args.common = common
    return args


def main() -> None:
    """Run the jobs two at a time, then write the table."""
    args = parse(sys.argv[1:])
    out = Path(args.out)
    if not args.table:
        jobs = [(name, shlex.split(flags), seed) for seed in map(int, args.seeds.split(","))
                for name, _, flags in (j.partition("=") for j in args.job)]
        run_jobs(jobs, out, args.minutes, args.common, args.eval_n,
                 tuple(map(int, args.cores.split(","))), args.steps, args.every)
    records = read_records(out)
    text = table(summarise(records)) + "\n"
    if args.paired_with:
        text += "\n" + paired_table(paired(records, args.paired_with), args.paired_with) + "\n"
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
