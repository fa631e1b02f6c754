"""Small data sets: Fashion-MNIST at a few training-set sizes, without augmentation, with
it (a fixed p) and with --augment-p auto, at equal wall time, several seeds, each evaluated
on 10,000 samples against the whole test split (the project's evaluator).

    python benchmarks/small_data.py --out runs/small-data --minutes 3
    python benchmarks/small_data.py --out runs/small-steps --steps 6000 --every 3000
    python benchmarks/small_data.py --out runs/small-data --table     # the table only

With `--steps` every run trains the same number of steps instead (each checkpoint at a
multiple of `--every` evaluated too): the load on the machine cannot change those results,
and each run's seconds per step are recorded for turning steps into time.

Runs go two at a time, one core and one thread each (benchmarks/side_by_side.py), as
OUT/SIZE-VARIANT/seed-S; a finished run is reused. Writes OUT/small_data.md: the table, mean
± std over seeds, and the issue's targets, each said met or not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from side_by_side import read_records, run_jobs, summarise, table  # noqa: E402


def variants(policy: str, p: float) -> dict[str, list[str]]:
    """The compared settings' flags: none, a fixed p, and auto."""
    return {"plain": [], "augment": ["--augment", policy, "--augment-p", str(p)],
            "auto": ["--augment", policy, "--augment-p", "auto"]}


def jobs(sizes: list[int], seeds: list[int], chosen: dict[str, list[str]]) -> list:
    """(name, flags, seed) for every size x variant x seed, seeds outermost (so that a cut
    short measurement has whole seeds); 60,000 is the whole split (no --max-images)."""
    return [(f"{size}-{name}", (["--max-images", str(size)] if size < 60_000 else []) + flags,
             seed) for seed in seeds for size in sizes for name, flags in chosen.items()]


def targets(summary: dict[str, dict]) -> list[str]:
    """The issue's targets, each with whether these runs met it."""
    lines = []
    for size in (500, 2000):
        plain = summary.get(f"{size}-plain")
        for variant in ("augment", "auto"):
            aug = summary.get(f"{size}-{variant}")
            if plain is None or aug is None:
                continue
            pairs = dict(zip(plain["seeds"], plain["fids"]))
            lower = sum(f < pairs[s] for s, f in zip(aug["seeds"], aug["fids"]) if s in pairs)
            change = aug["fid"][0] / plain["fid"][0] - 1
            met = lower == len(aug["fids"]) >= 3 and change <= -0.2
            lines.append(f"- {size:,} images, {variant}: lower FID than plain in {lower} of "
                         f"{len(aug['fids'])} seeds, mean FID {change:+.0%} (target: every "
                         "seed, -20% or better): " + ("met" if met else "not met"))
    full = summary.get("60000-plain")
    for variant in ("augment", "auto"):
        if full and f"60000-{variant}" in summary:
            worse = summary[f"60000-{variant}"]["fid"][0] / full["fid"][0] - 1
            lines.append(f"- 60,000 images, {variant}: mean FID {worse:+.0%} against plain "
                         f"(target: no worse than +5%): {'met' if worse <= 0.05 else 'not met'}")
    augmented = [summary[f"2000-{v}"]["fid"][0] for v in ("augment", "auto")
                 if f"2000-{v}" in summary]
    if augmented and full:
        gap = min(augmented) / full["fid"][0] - 1
        lines.append(f"- moonshot, 2,000 augmented vs 60,000 plain: {gap:+.0%} (target: within "
                     f"25%): {'met' if gap <= 0.25 else 'not met'}")
    return lines


def main() -> None:
    """Run what is not run yet, then write the table and the targets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/small-data")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--steps", type=int, help="equal steps instead of equal minutes")
    ap.add_argument("--every", type=int, help="with --steps: evaluate every K steps too")
    ap.add_argument("--sizes", default="500,2000,60000")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--policy", default="translation,cutout,colour")
    ap.add_argument("--p", type=float, default=0.3, help="the fixed p of the augment variant")
    ap.add_argument("--variants", default="plain,augment,auto")
    ap.add_argument("--eval-n", type=int, default=10_000)
    ap.add_argument("--table", action="store_true", help="only write the table")
    args = ap.parse_args()
    out = Path(args.out)
    if not args.table:
        chosen = {k: v for k, v in variants(args.policy, args.p).items()
                  if k in args.variants.split(",")}
        run_jobs(jobs(list(map(int, args.sizes.split(","))),
                      list(map(int, args.seeds.split(","))), chosen),
                 out, args.minutes, ["--preset", "fast", "--dataset", "fashion-mnist"],
                 args.eval_n, steps=args.steps, every=args.every)
    summary = summarise(read_records(out))
    text = table(summary) + "\n\n" + "\n".join(targets(summary)) + "\n"
    (out / "small_data.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
