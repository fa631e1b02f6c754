"""Quality per wall time: train a preset for a fixed time on Fashion-MNIST, then evaluate it.

    python benchmarks/quality_run.py --out OUT --data DIR --preset fast --seconds 90
    python benchmarks/quality_run.py --out OUT --data DIR --preset fast --ensemble 8
    python benchmarks/quality_run.py --out OUT --quick           # seconds: stand-in data
    python benchmarks/quality_run.py --out OUT --ensemble 3 --name 500-augment -- \
        --max-images 500 --augment translation,cutout,colour     # flags after -- go to train

DIR holds the Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...; copy them beside the
script, benchmarks/data/fashion-mnist, for a machine without internet). With --ensemble N
the N members (seeds 1..N) train in one step for the same wall time, and evaluation reports
each member and the mean +- std: a recipe's seed spread in the time of one run (with
--max-images each member trains on its own subset, drawn by its seed). Appends one JSON line
per run to OUT/quality.jsonl (FID, KID, precision, recall and classes covered, each member's
too) and prints it. --quick: stand-in random images, tiny
networks, 2 steps and 64 samples, to keep the script from rotting (tests/test_bench.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wganlab.cli import main as cli_main
from wganlab.data.idx import write_idx
from wganlab.metrics.evaluate import evaluate_run

QUALITY = ("precision", "recall", "modes_covered")  # recorded beside FID, each member's too
TINY = ["--g-filters", "8", "--c-filters", "4", "--batch-size", "8", "--z-dim", "8"]


def stand_in(folder: Path) -> Path:
    """Small random Fashion-MNIST-shaped IDX files (the --quick data)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 256), ("t10k", 128)):
        write_idx(folder / f"{split}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def main(argv=None) -> int:
    """Train, evaluate, append the record to OUT/quality.jsonl."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", default="benchmarks/data/fashion-mnist")
    p.add_argument("--preset", default="fast")
    p.add_argument("--seconds", type=float, default=90.0, help="training wall time")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--n", type=int, default=10_000, help="samples per evaluated model")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--name", help="the run's folder under OUT (default: quality-PRESET[-xN])")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = p.parse_args(argv[:cut]), argv[cut + 1:]
    out = Path(args.out)
    data = stand_in(out / "stand-in") if args.quick else Path(args.data)
    if not args.quick and not any(data.glob("train-images-idx3-ubyte*")):
        print(f"{data}: no Fashion-MNIST files; copy them there first", file=sys.stderr)
        return 2
    name = args.name or f"quality-{args.preset}" + (f"-x{args.ensemble}" if args.ensemble > 1
                                                     else "")
    run = out / name
    length = ["--steps", "2", *TINY] if args.quick else ["--minutes", str(args.seconds / 60)]
    ensemble = ["--ensemble", str(args.ensemble)] if args.ensemble > 1 else []
    code = cli_main(["train", "--preset", args.preset, "--dataset", "fashion-mnist",
                     "--data-dir", str(data), "--device", args.device, "--no-progress",
                     "--log-every", "100", "--out", str(run), *ensemble, *length, *extra])
    if code:
        return code
    record = evaluate_run(run, n=64 if args.quick else args.n,
                          device="cpu" if args.device == "cpu" else "cuda"
                          if args.device != "auto" else _auto())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "g_loss" in r]
    info = json.loads((run / "run.json").read_text())
    members = record.get("members", [])
    summary = {"name": name, "preset": args.preset, "flags": extra,
               "ensemble": args.ensemble, "seconds": args.seconds,
               "steps": record.get("step"), "step_mode": info.get("step_mode"),
               "train_seconds": train_rows[-1]["time"] if train_rows else None,
               "fid": record.get("fid"), "fid_std": record.get("fid_std"),
               "member_fids": [m.get("fid") for m in members],
               "kid_mean": record.get("kid_mean"), "device": info.get("device"),
               **{k: record.get(k) for k in QUALITY},
               **{f"member_{k}": [m.get(k) for m in members] for k in QUALITY}}
    with open(out / "quality.jsonl", "a") as f:
        f.write(json.dumps(summary) + "\n")
    print(json.dumps(summary))
    return 0


def _auto() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    sys.exit(main())
