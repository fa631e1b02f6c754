"""Command line: train an evaluator and save it (parses, then calls train_evaluator).

    python -m wganlab.metrics.make_evaluator --dataset fashion-mnist --out FILE.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .evaluator import GRAYSCALE_28
from .evaluator_lookup import cache_dir, weights_filename
from .evaluator_training import train_evaluator


def main(argv=None) -> None:
    """Parse the flags, train the evaluator, print its sidecar (accuracy, SHA-256, command)."""
    parser = argparse.ArgumentParser(
        prog="python -m wganlab.metrics.make_evaluator",
        description="Train the CNN evaluator used for FID/KID/coverage on a 28x28 data set.")
    parser.add_argument("--dataset", required=True, choices=GRAYSCALE_28)
    parser.add_argument("--out", help="weights file (.safetensors); default: the cache, "
                                      f"{cache_dir()}/DATASET-evaluator.safetensors")
    parser.add_argument("--epochs", type=int, help="default: the data set's recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", help="folder with the data set's files")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else cache_dir() / weights_filename(args.dataset)
    info = train_evaluator(args.dataset, out, args.epochs, args.seed, args.device,
                           args.data_dir, progress=lambda line: print(line, file=sys.stderr))
    print(json.dumps(info, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
