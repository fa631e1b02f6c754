"""A real `wganlab train` run's speed against the benchmark's step for the same preset.

    python benchmarks/loop_speed.py --out OUT [--bench OUT/bench-cuda.json] [--steps 600]

Writes stand-in Fashion-MNIST files (60,000 random 28x28 images; local files are read without
a checksum, and the pixels do not change the speed) to OUT/data, trains each preset for
--steps steps at batch 128 with the default speed switches, and takes the time per step from
metrics.jsonl (its `time` column, after the first --skip steps: warm-up and capture). With
--bench, it sets that beside the "ours" step of `wganlab bench` for the same preset and batch:
the loop's own cost (logging, samples, checkpoints) is the difference. Writes OUT/loop-speed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wganlab.cli import main as cli_main
from wganlab.data.idx import write_idx


def stand_in_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 60_000), ("t10k", 10_000)):
        write_idx(folder / f"{split}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte",
                  rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def ms_per_step(run: Path, skip: int) -> float | None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time" in r and "step" in r and not r.get("eval")]
    later = [r for r in rows if r["step"] > skip]
    if len(later) < 2:
        return None
    first, last = later[0], later[-1]
    return (last["time"] - first["time"]) / (last["step"] - first["step"]) * 1e3


def bench_ms(bench: Path | None, preset: str, batch: int) -> float | None:
    if bench is None or not bench.is_file():
        return None
    for case in json.loads(bench.read_text())["cases"]:
        if (case["preset"], case["batch_size"]) == (preset, batch):
            return case["variants"]["ours"]["ms_per_step"]
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--bench", help="a `wganlab bench --json` report to compare with")
    p.add_argument("--presets", nargs="+", default=["seed", "wgan-gp"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--skip", type=int, default=100, help="steps left out of the timing")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="further `wganlab train` flags (e.g. --g-filters 16 for a smoke test)")
    args = p.parse_args(argv)
    out = Path(args.out)
    data = stand_in_data(out / "data")
    results = []
    for preset in args.presets:
        run = out / f"train-{preset}"
        code = cli_main(["train", "--preset", preset, "--dataset", "fashion-mnist",
                         "--data-dir", str(data), "--batch-size", str(args.batch_size),
                         "--steps", str(args.steps), "--log-every", "50", "--no-progress",
                         "--device", args.device, "--out", str(run), *args.extra])
        step_mode = json.loads((run / "run.json").read_text()).get("step_mode")
        loop = ms_per_step(run, args.skip) if code == 0 else None
        bench = bench_ms(Path(args.bench) if args.bench else None, preset, args.batch_size)
        results.append({"preset": preset, "exit_code": code, "step_mode": step_mode,
                        "train_ms_per_step": loop, "bench_ms_per_step": bench,
                        "loop_overhead": loop / bench - 1 if loop and bench else None})
    (out / "loop-speed.json").write_text(json.dumps(results, indent=2))
    print("| preset | step mode | train ms/step | bench ms/step (ours) | loop overhead |")
    print("|---|---|---|---|---|")
    for r in results:
        def fmt(x, f):
            return "-" if x is None else format(x, f)

        print(f"| {r['preset']} | {r['step_mode']} | {fmt(r['train_ms_per_step'], '.2f')} | "
              f"{fmt(r['bench_ms_per_step'], '.2f')} | {fmt(r['loop_overhead'], '+.1%')} |")
    return max(r["exit_code"] for r in results)


if __name__ == "__main__":
    sys.exit(main())
