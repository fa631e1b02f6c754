"""Small data sets: Fashion-MNIST at a few training-set sizes, without augmentation, with
it (a fixed p) and with --augment-p auto, at equal wall time, several seeds, each evaluated
on 10,000 samples against the whole test split (the project's evaluator).

    python benchmarks/small_data.py --out runs/small-data --minutes 1.25 &
    python benchmarks/small_data.py --out runs/small-data --minutes 1.25 --phase evaluate

The training (the timed part) holds /tmp/wganlab-measure.lock, the lock that
`flock /tmp/wganlab-measure.lock CMD` takes, so no two timed runs on the machine overlap; it
is taken once per seed, whose runs then go back to back (the compared variants share the
machine's conditions). The load average at each run's start is recorded. The evaluations,
whose numbers do not depend on time, run beside the training at the lowest CPU priority and
without the lock. A finished run is reused.
Writes OUT/small_data.json and OUT/small_data.md.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import time
from pathlib import Path

from wganlab.bench.sweep import Sweep, make_evaluate
from wganlab.config import apply_overrides, get_preset, validate

LOCK = os.environ.get("WGANLAB_MEASURE_LOCK", "/tmp/wganlab-measure.lock")  # tests: another
KEYS = ("fid", "precision", "recall", "modes_covered", "steps")


def variants(policy: str, p: float) -> dict[str, dict]:
    """The compared settings: none, a fixed p, and auto."""
    return {"plain": {}, "augment": {"augment": policy, "augment_p": p},
            "auto": {"augment": policy, "augment_p": "auto"}}


def train_one(out: Path, size: int, seed: int, minutes: float, train: dict) -> dict:
    """Train one run (the caller holds the measurement lock), or read the record of a run
    that finished before."""
    from wganlab.training.loop import train as train_run

    done = out / "small_data_run.json"
    if done.exists():
        return json.loads(done.read_text())
    cfg = apply_overrides(get_preset("fast"), {
        "run": {"dataset": "fashion-mnist", "out": str(out), "progress": False,
                "max_images": None if size >= 60_000 else size},
        "train": {**train, "seed": seed, "minutes": minutes, "epochs": None}})
    load, started, cpu = os.getloadavg(), time.time(), time.process_time()
    result = train_run(validate(cfg))
    seconds, cpu = time.time() - started, time.process_time() - cpu
    if result.exit_code:
        raise SystemExit(result.exit_code)
    record = {"run": str(out), "seed": seed, "steps": result.step, "load": list(load),
              "locked_seconds": seconds, "cpu_seconds": cpu}
    done.write_text(json.dumps(record))
    return record


def evaluate_one(record: dict, evaluate) -> dict:
    """The run's evaluation (eval.json, reused when there)."""
    path = Path(record["run"]) / "eval.json"
    found = json.loads(path.read_text()) if path.exists() else evaluate(Path(record["run"]))
    return {**record, **{k: found[k] for k in ("fid", "precision", "recall", "modes_covered")}}


def summarise(records: list[dict]) -> dict:
    """{size: {variant: {key: [mean, std]}}} over seeds."""
    out: dict = {}
    for r in records:
        out.setdefault(str(r["size"]), {}).setdefault(r["variant"], []).append(r)
    return {size: {v: {k: [statistics.fmean(x[k] for x in rs),
                           statistics.stdev(x[k] for x in rs) if len(rs) > 1 else 0.0]
                       for k in KEYS} | {"fids": [x["fid"] for x in rs],
                                         "steps_each": [x["steps"] for x in rs]}
                   for v, rs in by.items()} for size, by in out.items()}


def table(summary: dict) -> str:
    """Markdown: one row per (size, variant), mean ± std over seeds."""
    lines = ["| training images | variant | steps | FID | precision | recall | classes "
             "covered | FID per seed | steps per seed |", "|---|---|---|---|---|---|---|---|---|"]
    for size, by in summary.items():
        for v, s in by.items():
            cells = [f"{int(size):,}", v, "{:.0f} ± {:.0f}".format(*s["steps"]),
                     "{:.1f} ± {:.1f}".format(*s["fid"]),
                     "{:.2f} ± {:.2f}".format(*s["precision"]),
                     "{:.2f} ± {:.2f}".format(*s["recall"]),
                     "{:.1f} ± {:.1f}".format(*s["modes_covered"]),
                     ", ".join(f"{f:.0f}" for f in s["fids"]),
                     ", ".join(str(n) for n in s["steps_each"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(summary: dict) -> list[str]:
    """The issue's targets, each with whether these runs met it."""
    lines = []
    for size in ("500", "2000"):
        by = summary.get(size, {})
        for variant in ("augment", "auto"):
            if "plain" not in by or variant not in by:
                continue
            plain, aug = by["plain"]["fids"], by[variant]["fids"]
            lower = sum(a < p for a, p in zip(aug, plain))
            change = by[variant]["fid"][0] / by["plain"]["fid"][0] - 1
            met = lower == len(aug) >= 3 and change <= -0.2
            lines.append(f"- {size} images, {variant}: lower FID in {lower} of {len(aug)} "
                         f"seeds, mean FID {change:+.0%} (target: every seed, -20% or "
                         "better): " + ("met" if met else "not met"))
    full = summary.get("60000", {})
    for variant in ("augment", "auto"):
        if "plain" in full and variant in full:
            worse = full[variant]["fid"][0] / full["plain"]["fid"][0] - 1
            lines.append(f"- 60,000 images, {variant}: FID {worse:+.0%} against plain "
                         f"(target: no worse than +5%): {'met' if worse <= 0.05 else 'not met'}")
    if "2000" in summary and "plain" in full:
        best = min(summary["2000"][v]["fid"][0] for v in summary["2000"] if v != "plain")
        gap = best / full["plain"]["fid"][0] - 1
        lines.append(f"- moonshot, 2,000 augmented vs 60,000 plain: {gap:+.0%} (target: within "
                     f"25%): {'met' if gap <= 0.25 else 'not met'}")
    return lines


def main() -> None:
    """Parse the flags, run what is not run yet, write the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/small-data")
    ap.add_argument("--minutes", type=float, default=1.25)
    ap.add_argument("--sizes", default="500,2000,60000")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--policy", default="translation,cutout,colour")
    ap.add_argument("--p", type=float, default=1.0, help="the fixed p of the augment variant")
    ap.add_argument("--variants", default="plain,augment,auto")
    ap.add_argument("--auto-sizes", default="500,2000,60000", help="sizes that run auto")
    ap.add_argument("--eval-n", type=int, default=10_000)
    ap.add_argument("--phase", choices=["train", "evaluate", "table"], default="train",
                    help="train (timed, locked) or evaluate (waits for each run, then "
                         "writes the table); run both, side by side. table: the table of "
                         "every evaluated run under --out")
    args = ap.parse_args()
    out = Path(args.out)
    evaluate = make_evaluate(Sweep([], [], args.minutes, out, {}, eval_samples=args.eval_n))
    chosen = {k: v for k, v in variants(args.policy, args.p).items()
              if k in args.variants.split(",")}
    sizes = list(map(int, args.sizes.split(",")))
    auto_sizes = set(map(int, args.auto_sizes.split(",")))
    runs = [(seed, size, name, train) for seed in map(int, args.seeds.split(","))
            for size in sizes for name, train in chosen.items()
            if name != "auto" or size in auto_sizes]
    if args.phase == "train":
        # One lock per seed: that seed's runs back to back, so the variants compared share
        # the machine's conditions, and other users' timed runs wait at most one seed.
        for seed in dict.fromkeys(r[0] for r in runs):
            with open(LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                for _, size, name, train in [r for r in runs if r[0] == seed]:
                    record = train_one(out / str(size) / name / f"seed-{seed}", size, seed,
                                       args.minutes, train)
                    print(f"{size} {name} seed {seed}: {record['steps']} steps, "
                          f"load {record['load'][0]:.2f}", flush=True)
        return
    if args.phase == "table":
        runs = [(int(p.parent.name.split("-")[1]), int(p.parent.parent.parent.name),
                 p.parent.parent.name, None) for p in out.glob("*/*/seed-*/eval.json")]
        order = list(variants("", 0.0))
        runs.sort(key=lambda r: (r[1], order.index(r[2]), r[0]))
    # Evaluation: no lock, at the lowest CPU priority (yielding to every timed run), as each
    # run's training finishes (the train phase runs beside it).
    os.nice(19 if args.phase == "evaluate" else 0)
    records = []
    for seed, size, name, _ in runs:
        done = out / str(size) / name / f"seed-{seed}" / "small_data_run.json"
        while not done.exists():
            time.sleep(10)
        record = {**json.loads(done.read_text()), "size": size, "variant": name}
        records.append(evaluate_one(record, evaluate))
        print(f"{size} {name} seed {seed}: FID {records[-1]['fid']:.1f}", flush=True)
    summary = summarise(records)
    (out / "small_data.json").write_text(json.dumps(
        {"minutes": args.minutes, "policy": args.policy, "p": args.p, "summary": summary,
         "runs": [{k: v for k, v in r.items() if k != "config"} for r in records]}, indent=1))
    text = table(summary) + "\n\n" + "\n".join(targets(summary)) + "\n"
    (out / "small_data.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
