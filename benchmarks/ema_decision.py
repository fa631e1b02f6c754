"""Should a preset average its generator's weights (EMA)? One ensemble run answers it with
several seeds at once: N members train with `--ema-decay D`, checkpoints every K steps, and
each member's raw and EMA weights are evaluated at every checkpoint (the same run, the same
steps: the one thing that differs is which weights draw the samples).

    python benchmarks/ema_decision.py --out runs/ema --members 3 --steps 3000 --every 1000
    python benchmarks/ema_decision.py --out runs/ema --table      # the table only

Writes OUT/ema.jsonl (one line per checkpoint, member and weights) and OUT/ema.md: per
checkpoint, raw and EMA FID as mean ± std over members, and in how many members EMA was lower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

WGANLAB = [sys.executable, "-m", "wganlab"]


def train(args, run: Path) -> float:
    """The ensemble run (skipped when its last checkpoint is there); its wall seconds."""
    if (run / "checkpoints" / f"step-{args.steps:08d}.pt").exists():
        return float("nan")
    started = time.time()
    subprocess.run(WGANLAB + ["train", "--preset", args.preset, "--dataset", args.dataset,
                              "--ensemble", str(args.members), "--ema-decay", str(args.decay),
                              "--steps", str(args.steps), "--checkpoint-every", str(args.every),
                              "--keep-last", "1000", "--out", str(run), "--no-progress",
                              *args.extra], check=True, stdout=subprocess.DEVNULL)
    return time.time() - started


def evaluate(args, run: Path) -> list[dict]:
    """Every checkpoint x member x weights, each evaluation kept in OUT/evals/."""
    rows = []
    for step in range(args.every, args.steps + 1, args.every):
        for member in range(args.members):
            for weights in ("raw", "ema"):
                out = Path(args.out) / "evals" / f"step{step}-m{member}-{weights}.json"
                if not out.exists():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(WGANLAB + [
                        "evaluate", str(run), "--checkpoint",
                        str(run / "checkpoints" / f"step-{step:08d}.pt"), "--member",
                        str(member), "--weights", weights, "--n", str(args.eval_n),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
                found = json.loads(out.read_text())
                rows.append({"step": step, "member": member, "weights": weights,
                             "fid": found["fid"], "recall": found["recall"],
                             "modes_covered": found["modes_covered"]})
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: per step, raw and EMA FID (mean ± std over members), EMA lower in k of N."""
    lines = ["| step | raw FID | EMA FID | EMA lower in | raw recall | EMA recall |",
             "|---|---|---|---|---|---|"]
    for step in sorted({r["step"] for r in rows}):
        at = {(r["member"], r["weights"]): r for r in rows if r["step"] == step}
        members = sorted({m for m, _ in at})
        cells = [f"{step:,}"]
        for weights in ("raw", "ema"):
            fids = [at[m, weights]["fid"] for m in members]
            spread = statistics.stdev(fids) if len(fids) > 1 else 0.0
            cells.append(f"{statistics.fmean(fids):.1f} ± {spread:.1f}")
        lower = sum(at[m, "ema"]["fid"] < at[m, "raw"]["fid"] for m in members)
        cells.append(f"{lower} of {len(members)}")
        cells += [f"{statistics.fmean(at[m, w]['recall'] for m in members):.3f}"
                  for w in ("raw", "ema")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Train (unless done), evaluate what is not evaluated, write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/ema")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--decay", type=float, default=0.999)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--eval-n", type=int, default=10_000)
    ap.add_argument("--table", action="store_true", help="only write the table")
    ap.add_argument("extra", nargs="*", help="more `wganlab train` flags (after --)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        seconds = train(args, out / "run")
        print(f"trained in {seconds:.0f} s", flush=True)
    rows = evaluate(args, out / "run")
    with open(out / "ema.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    text = table(rows) + "\n"
    (out / "ema.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
